"""Mention-level assertion: one test per cue kind and per scope rule, in English and Chinese,
plus sentence splitting, anonymisation masking and the vocabulary file."""

from __future__ import annotations

import pytest

from chexnet.training.reports.assertion import (
    ABSENT,
    PRESENT,
    UNCERTAIN,
    label_report,
    split_sentences,
)
from chexnet.training.reports.findings import builtin_vocabulary, load_vocabulary
from chexnet.training.reports.report_files import ReportFileError

VOCAB = builtin_vocabulary()


def labels(text: str, vocab=VOCAB) -> dict[str, int]:
    """The labels a report names (value != 0), plus every label the test names explicitly."""
    return label_report(text, vocab).values


@pytest.mark.parametrize(("text", "label", "expected"), [
    # pre-negation cues
    ("No pneumothorax.", "Pneumothorax", ABSENT),
    ("Without pleural effusion.", "Effusion", ABSENT),
    ("Negative for pneumonia.", "Pneumonia", ABSENT),
    ("Lungs free of consolidation.", "Consolidation", ABSENT),
    ("Clear of pulmonary edema.", "Edema", ABSENT),
    ("No evidence of pneumothorax.", "Pneumothorax", ABSENT),
    ("Resolution of the left lower lobe atelectasis.", "Atelectasis", ABSENT),
    ("Neither effusion nor pneumothorax.", "Pneumothorax", ABSENT),
    # post-negation cues
    ("Pneumothorax is not seen.", "Pneumothorax", ABSENT),
    ("Pleural effusions are not identified.", "Effusion", ABSENT),
    ("The right pneumothorax has resolved.", "Pneumothorax", ABSENT),
    ("Pneumonia is ruled out.", "Pneumonia", ABSENT),
    ("Pneumothorax: none.", "Pneumothorax", ABSENT),  # structured reports
    ("Pleural effusion: negative.", "Effusion", ABSENT),
    # uncertainty cues, before and after
    ("Possible small left pleural effusion.", "Effusion", UNCERTAIN),
    ("Opacity may represent atelectasis.", "Atelectasis", UNCERTAIN),
    ("Cannot exclude early pneumonia.", "Pneumonia", UNCERTAIN),
    ("Findings suggestive of mild edema.", "Edema", UNCERTAIN),
    ("Questionable tiny pneumothorax.", "Pneumothorax", UNCERTAIN),
    ("Concerning for pneumonia.", "Pneumonia", UNCERTAIN),
    ("A small pneumothorax cannot be excluded.", "Pneumothorax", UNCERTAIN),
    ("Atelectasis versus pneumonia.", "Atelectasis", UNCERTAIN),  # versus: both sides
    ("Atelectasis versus pneumonia.", "Pneumonia", UNCERTAIN),
    ("Atelectasis vs. pneumonia.", "Atelectasis", UNCERTAIN),  # "vs." ends no sentence
    # uncertainty beats negation when both reach a mention
    ("No pneumothorax cannot be excluded.", "Pneumothorax", UNCERTAIN),
    # pseudo-negations look like cues but are none
    ("No change in the small right pleural effusion.", "Effusion", PRESENT),
    ("No significant change in moderate cardiomegaly.", "Cardiomegaly", PRESENT),
    ("Not only cardiomegaly but also edema.", "Cardiomegaly", PRESENT),
    ("Without interval change of the nodule.", "Nodule", PRESENT),
    # plain statements and comparisons to priors
    ("Stable mild cardiomegaly, unchanged from XXXX.", "Cardiomegaly", PRESENT),
    ("The heart is mildly enlarged.", "Cardiomegaly", PRESENT),
    ("Small hiatal hernia.", "Hernia", PRESENT),
    ("Left apical pleural thickening.", "Pleural_Thickening", PRESENT),
    ("Small pericardial effusion.", "Effusion", ABSENT),  # not pleural: not named
])
def test_each_cue(text, label, expected):
    assert labels(text)[label] == expected


@pytest.mark.parametrize(("text", "expected"), [
    # the negation reaches every item of a list, across commas and "or"
    ("No focal consolidation, pleural effusion, or pneumothorax.",
     {"Consolidation": 0, "Effusion": 0, "Pneumothorax": 0}),
    ("The lungs are clear without consolidation, effusion, edema or pneumothorax.",
     {"Consolidation": 0, "Effusion": 0, "Edema": 0, "Pneumothorax": 0}),
    # termination terms end the scope
    ("No pneumothorax, but there is a small left pleural effusion.",
     {"Pneumothorax": 0, "Effusion": 1}),
    ("No consolidation; however, mild pulmonary edema is present.",
     {"Consolidation": 0, "Edema": 1}),
    ("No effusion, although there is bibasilar atelectasis.", {"Effusion": 0, "Atelectasis": 1}),
    ("Left lower lobe opacity, which may represent pneumonia.", {"Pneumonia": -1}),
    # a sentence end ends the scope
    ("No pneumothorax. Small left pleural effusion.", {"Pneumothorax": 0, "Effusion": 1}),
    # post-cues reach back over a list
    ("Pleural effusion or pneumothorax is not seen.", {"Effusion": 0, "Pneumothorax": 0}),
    # a present mention anywhere wins over a negated one (report level)
    ("No pleural effusion. Small left pleural effusion is again seen.", {"Effusion": 1}),
    # the nearest pre-cue decides
    ("Possible pneumonia, no pneumothorax.", {"Pneumonia": -1, "Pneumothorax": 0}),
])
def test_scope_rules(text, expected):
    got = labels(text)
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("未见气胸、胸腔积液。", {"Pneumothorax": 0, "Effusion": 0}),  # 、 list in the scope
    ("双肺未见实变。", {"Consolidation": 0}),
    ("无胸腔积液。", {"Effusion": 0}),
    ("没有气胸。", {"Pneumothorax": 0}),
    ("双肺未见实变，右肺结节。", {"Consolidation": 0, "Nodule": 1}),  # comma ends the scope
    ("左下肺感染可能。", {"Pneumonia": -1}),
    ("考虑肺炎。", {"Pneumonia": -1}),
    ("气胸不除外。", {"Pneumothorax": -1}),
    ("左肺结节，待排。", {"Nodule": 1}),  # the hedge is in another clause
    ("右肺结节待排。", {"Nodule": -1}),
    ("疑似肺气肿。", {"Emphysema": -1}),
    ("右侧胸腔积液较前无明显变化。", {"Effusion": 1}),  # pseudo: "no obvious change"
    ("右侧气胸已吸收。", {"Pneumothorax": 0}),
    ("心影增大，主动脉硬化。", {"Cardiomegaly": 1}),
])
def test_chinese_cues(text, expected):
    got = labels(text)
    assert {k: got[k] for k in expected} == expected


def test_normal_means_no_finding_present_or_uncertain_and_unknown_is_not_normal():
    assert labels("No acute cardiopulmonary process.")["normal"] == 1
    assert labels("心肺未见明显异常。")["normal"] == 1
    assert labels("No pleural effusion or pneumothorax.")["normal"] == 1
    assert labels("No acute process. Possible small effusion.")["normal"] == 0
    assert labels("Normal chest. Mild cardiomegaly.")["normal"] == 0
    unknown = label_report("Right IJ catheter tip in the SVC.", VOCAB)
    assert not unknown.matched
    assert unknown.values["normal"] == 0
    assert unknown.unmatched == ("right ij catheter tip in the svc",)


def test_indication_and_history_sections_are_not_findings():
    text = ("INDICATION: ___-year-old with fever, evaluate for pneumonia.\nFINDINGS: Small "
            "left effusion.\nIMPRESSION: Possible pneumothorax.")
    got = labels(text)
    assert got["Pneumonia"] == ABSENT
    assert got["Effusion"] == PRESENT
    assert got["Pneumothorax"] == UNCERTAIN
    assert labels("HISTORY: Rule out pneumothorax. IMPRESSION: No acute process.")["normal"] == 1
    assert labels("临床诊断：肺炎。诊断意见：心肺未见明显异常。")["Pneumonia"] == ABSENT


def test_sentences_keep_lists_and_decimals_and_mask_anonymisation():
    assert split_sentences("No focal consolidation, pleural effusion, or pneumothorax. Nodule "
                           "1.5 cm.") == ["no focal consolidation, pleural effusion, or "
                                          "pneumothorax", "nodule 1.5 cm"]
    assert split_sentences("1. Mild edema. 2. Small effusion") == ["mild edema", "small effusion"]
    assert split_sentences("Comparison: XXXX. Dr. XXXX was called. Seen on [**2150-3-12**] and "
                           "___.") == ["dr _anon_ was called", "seen on _anon_ and _anon_"]
    assert split_sentences("IMPRESSION: No acute process.") == ["no acute process"]
    assert split_sentences("双肺纹理增多；主动脉硬化。") == ["双肺纹理增多", "主动脉硬化"]


def test_a_vocabulary_file_adds_terms_and_labels(tmp_path):
    path = tmp_path / "words.csv"
    path.write_text("label,term,regex\nEffusion,积液,0\nFracture,rib fractures?,1\n"
                    "Fracture,骨折,\n", encoding="utf-8")
    vocab = load_vocabulary(path)
    assert vocab.labels[-1] == "Fracture"
    assert "Fracture" in vocab.findings
    got = labels("No rib fracture. 左侧少量积液。右侧第5肋骨折。", vocab)
    assert got["Fracture"] == 1
    assert got["Effusion"] == 1
    assert labels("No rib fractures.", vocab)["Fracture"] == 0
    assert "Fracture" not in VOCAB.labels  # the built-in vocabulary is not changed


@pytest.mark.parametrize(("content", "match"), [
    ("word,meaning\nEffusion,fluid\n", "label and term"),
    ("label,term\nEffusion,\n", "line 2: empty"),
    ("label,term,regex\nMass,(unclosed,1\n", "line 2: the term is not a valid regular"),
])
def test_bad_vocabulary_files_are_named_errors(tmp_path, content, match):
    path = tmp_path / "words.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportFileError, match=match) as err:
        load_vocabulary(path)
    assert str(path) in str(err.value)
