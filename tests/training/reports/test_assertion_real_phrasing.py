"""Rules added after reading the errors of ``--auto`` on a real corpus with expert codes
(benchmarks/eval_reports_iu.py): one test per rule, on sentences written for these tests (none
taken from that corpus), with the neighbouring case that must not change."""

from __future__ import annotations

import pytest

from chexnet.training.reports.assertion import ABSENT, PRESENT, UNCERTAIN, label_report
from chexnet.training.reports.findings import NORMAL, builtin_vocabulary

VOCAB = builtin_vocabulary()


@pytest.mark.parametrize(("text", "label", "expected"), [
    # "clear of" negates a list even after "the lungs are" (a normal statement used to swallow it)
    ("The lungs are clear of consolidation, effusion or pneumothorax.", "Pneumothorax", ABSENT),
    ("The lungs are clear of consolidation, effusion or pneumothorax.", "Effusion", ABSENT),
    ("Lungs are hyperinflated and clear of focal infiltrate.", "Infiltration", ABSENT),
    ("Lungs are hyperinflated and clear of focal infiltrate.", "Emphysema", ABSENT),
    # hedges with words between the cue and the finding, or not yet listed
    ("Question mild interstitial edema.", "Edema", UNCERTAIN),
    ("Suspicion for a small left apical pneumothorax.", "Pneumothorax", UNCERTAIN),
    ("It is difficult to completely exclude early consolidation.", "Consolidation", UNCERTAIN),
    ("Correlate clinically for aspiration pneumonia.", "Pneumonia", UNCERTAIN),
    ("Evaluation for pneumothorax is limited by rotation.", "Pneumothorax", UNCERTAIN),
    ("Differential considerations include atelectasis and scarring.", "Atelectasis", UNCERTAIN),
    ("Diagnostic considerations would include metastatic nodules.", "Nodule", UNCERTAIN),
    ("A retrocardiac consolidation is not entirely excluded.", "Consolidation", UNCERTAIN),
    ("Early interstitial edema is in the differential.", "Edema", UNCERTAIN),
    ("Aspiration pneumonia would be a consideration here.", "Pneumonia", UNCERTAIN),
    # "not definitely seen" rules out, as "no definite" does
    ("The nodule described before is not definitely seen today.", "Nodule", ABSENT),
    ("The nodule described before is seen again today.", "Nodule", PRESENT),
    # heart size without a verb, or "large"; a negated size stays negated
    ("Heart size mildly enlarged.", "Cardiomegaly", PRESENT),
    ("The heart is large.", "Cardiomegaly", PRESENT),
    ("The heart is not enlarged.", "Cardiomegaly", ABSENT),
    # apical capping is pleural thickening
    ("Bilateral apical capping is unchanged.", "Pleural_Thickening", PRESENT),
    ("No apical capping.", "Pleural_Thickening", ABSENT),
    # edema of the soft tissues is not pulmonary edema
    ("Soft tissue edema over the left shoulder.", "Edema", ABSENT),
    ("Mild interstitial edema.", "Edema", PRESENT),
    # air in the soft tissues and cystic fibrosis are not emphysema / pulmonary fibrosis
    ("Subcutaneous emphysema along the right chest wall.", "Emphysema", ABSENT),
    ("Centrilobular emphysema in both upper lobes.", "Emphysema", PRESENT),
    ("Hyperinflation from known cystic fibrosis.", "Fibrosis", ABSENT),
    ("Basal pulmonary fibrosis.", "Fibrosis", PRESENT),
    # "maybe", "suggestion of"
    ("Maybe a small left effusion.", "Effusion", UNCERTAIN),
    ("Slight suggestion of right basal consolidation.", "Consolidation", UNCERTAIN),
])
def test_rule(text, label, expected):
    assert label_report(text, VOCAB).values[label] == expected


def test_lungs_clear_alone_is_still_a_normal_statement():
    values = label_report("The lungs are clear.", VOCAB).values
    assert values[NORMAL] == 1
    assert all(values[lb] == ABSENT for lb in VOCAB.findings)
    # clear of a negated list: nothing present, so the report is still normal
    assert label_report("The lungs are clear of edema and effusion.", VOCAB).values[NORMAL] == 1
