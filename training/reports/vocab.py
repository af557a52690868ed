"""Label suggestions for clusters: the paper's Table I terms (plus a few common findings) in
Chinese and English, matched to a cluster's clauses with rapidfuzz.

A suggestion only pre-fills the ``label`` column of label_map.csv; the user confirms or edits
it. Edit distance cannot read negation (未见胸腔积液 "no pleural effusion" contains 胸腔积液), so a
clause with a negation cue never gets a finding suggested, only ``normal`` when it matches a
normal phrase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz, process

NORMAL_LABEL = "normal"
NORMAL_PHRASES = ("未见明显异常", "未见异常", "心肺未见异常", "心肺膈未见明显异常", "未见明显病变",
                  "no active disease", "no acute cardiopulmonary disease", "normal chest",
                  "no abnormality", "no acute disease", "unremarkable")
FINDING_PHRASES: dict[str, tuple[str, ...]] = {
    "increased lung marking": ("肺纹理增多", "肺纹理增粗", "肺纹理增强", "increased lung markings",
                               "increased pulmonary markings"),
    "aortosclerosis": ("主动脉硬化", "主动脉弓硬化", "主动脉迂曲", "主动脉结钙化",
                       "aortic sclerosis", "aortosclerosis", "aortic calcification"),
    "increased heart shadow": ("心影增大", "心影稍大", "心影饱满", "enlarged heart shadow",
                               "cardiomegaly", "enlarged cardiac silhouette"),
    "pleural thickening": ("胸膜增厚", "胸膜肥厚", "pleural thickening"),
    "pulmonary interstitial hyperplasia": ("肺间质增生", "间质性改变", "interstitial hyperplasia",
                                           "interstitial changes"),
    "costophrenic angle blunting": ("肋膈角变钝", "肋膈角钝", "costophrenic angle blunting",
                                    "blunted costophrenic angle"),
    "pleural effusion": ("胸腔积液", "pleural effusion"),
    "emphysema": ("肺气肿", "emphysema"),
    "bronchitis": ("支气管炎", "bronchitis"),
    "pulmonary infection": ("肺部感染", "肺感染", "肺炎", "感染性病变", "pulmonary infection",
                            "pneumonia", "lung infection"),
    "nodule": ("结节", "nodule"),
    "pneumothorax": ("气胸", "pneumothorax"),
    "atelectasis": ("肺不张", "atelectasis"),
    "fracture": ("骨折", "fracture"),
}
NORMAL_CUE = re.compile(r"正常|(?<![a-z])(normal|unremarkable)(?![a-z])")
NEGATION = re.compile(r"未见|无明显|没有|排除|(?<![a-z])(no|not|without|negative|free of)(?![a-z])")
_PHRASES = [(p, label) for label, ps in FINDING_PHRASES.items() for p in ps]
SCORE_CUTOFF = 85.0


def suggest_label(clauses: Sequence[str]) -> str:
    """The label the most frequent clauses of a cluster point to, or "" when unsure.

    ``clauses`` are the cluster's clauses, most frequent first; the first one that matches
    decides.
    """
    for clause in clauses:
        negated = NEGATION.search(clause) is not None
        # partial_ratio finds a phrase inside a longer clause; phrases much longer than the
        # clause are left out, or a bare "no" would match "no active disease".
        normal = [p for p in NORMAL_PHRASES if len(p) <= len(clause) + 2]
        if (negated or NORMAL_CUE.search(clause)) and process.extractOne(
                clause, normal, scorer=fuzz.partial_ratio, score_cutoff=SCORE_CUTOFF):
            return NORMAL_LABEL
        if negated:
            continue
        fits = [(p, label) for p, label in _PHRASES if len(p) <= len(clause) + 2]
        best = process.extractOne(clause, [p for p, _ in fits], scorer=fuzz.partial_ratio,
                                  score_cutoff=SCORE_CUTOFF)
        if best is not None:
            return fits[best[2]][1]
    return ""
