"""Negation, uncertainty, pseudo-negation and scope-termination cues (NegEx / ConText style) in
English and Chinese, for :mod:`.assertion`.

Kinds: ``neg_pre`` negates the mentions after it, ``neg_post`` the mentions before it;
``unc_pre`` / ``unc_post`` make them uncertain; ``unc_both`` ("versus", 可能, 考虑) the mentions on
either side; ``pseudo`` looks like a cue but is not one ("no change", "not only"): it only
hides the cue words it contains; ``term`` ends a cue's scope ("but", "however", 但).
Where cues overlap, the longer one wins ("cannot be excluded" over "not", 未见明显异常 over 未见).

The lists follow NegEx (Chapman et al. 2001) and ConText (Harkema et al. 2009) and the
CheXpert labeller's pattern groups, cut to the phrases chest X-ray reports use.
"""

from __future__ import annotations

import re

ENGLISH_CUES: dict[str, tuple[str, ...]] = {
    "neg_pre": (r"no", r"not", r"without", r"negative for", r"free of", r"clear of",
                r"no evidence of", r"no signs? of", r"no radiographic evidence of",
                r"absence of", r"resolution of", r"resolved", r"never", r"nor", r"rather than",
                r"interval resolution of", r"no longer", r"removal of", r"lack of",
                r"there is no", r"there are no", r"has been no", r"no new", r"no definite",
                r"no convincing", r"no focal", r"ruled out", r"neither"),
    "neg_post": (r"(?:is|are|was|were) not (?:seen|identified|present|visualized|demonstrated|"
                 r"appreciated|evident|noted)", r"not (?:seen|identified|present|visualized|"
                 r"demonstrated|appreciated|evident)", r"not (?:definitely|clearly|convincingly) "
                 r"(?:seen|identified|visualized)", r"(?:is|are|was|were) absent", r"absent",
                 r"(?:has|have) resolved", r"resolved", r"(?:has|have) cleared",
                 r"(?:is|are|was|were) no longer (?:seen|present|visualized|evident)",
                 r"(?:is|are|has been|have been) ruled out", r"(?:is|are) excluded",
                 r"(?:has|have) been removed", r"none", r"negative"),
    "unc_pre": (r"may", r"maybe", r"might", r"could", r"possible", r"possibly", r"probable",
                r"probably", r"questionable", r"question of", r"suspicious for",
                r"suspected", r"suspect", r"suggestive of", r"suggests?", r"suggesting",
                r"concerning for", r"concern for", r"worrisome for", r"cannot exclude",
                r"can not exclude", r"cannot rule out", r"can not rule out",
                r"differential (?:diagnosis |diagnoses |considerations? )?"
                r"(?:includes?|including|of)", r"consider", r"considered", r"equivocal",
                r"borderline", r"rule out", r"r/o", r"evaluate for", r"to exclude", r"likely",
                r"presumed", r"indeterminate", r"question", r"suspicion (?:for|of)",
                r"suggestion of", r"difficult to (?:completely |entirely )?exclude",
                r"evaluation for", r"correlate (?:clinically )?for",
                r"(?:diagnostic )?considerations (?:would )?include"),
    "unc_post": (r"(?:is|are|cannot be|can not be|not) excluded", r"cannot be ruled out",
                 r"not ruled out", r"(?:is |are )?not (?:entirely|completely|totally|definitely)"
                 r" excluded", r"(?:is|are) in the differential", r"would be a consideration",
                 r"(?:is|are) (?:possible|suspected|questioned|likely)",
                 r"(?:is|are) not excluded", r"or not"),
    "unc_both": (r"versus", r"vs\.?"),
    "pseudo": (r"no (?:significant |interval |appreciable |substantial )?change",
               r"no (?:significant |interval )?increase", r"not only", r"not necessarily",
               r"without (?:significant |interval )?change", r"not (?:significantly |been )?"
               r"changed", r"no (?:significant )?worsening", r"not appreciably changed",
               r"no improvement", r"not improved", r"not well (?:seen|visualized)"),
    "term": (r"but", r"however", r"although", r"though", r"except", r"apart from",
             r"aside from", r"which", r"whereas", r"there is", r"there are", r"there has been"),
}
# Left out on purpose: "consistent with", "compatible with", "represents" -- in ConText's hedge
# list, but a radiologist writing "findings consistent with pulmonary edema" means edema is there.

CHINESE_CUES: dict[str, tuple[str, ...]] = {
    "neg_pre": ("未见", "未见明显", "无明显", "无", "未", "没有", "未发现", "未显示", "排除",
                "不伴",
                "未见确切", "未见明确"),
    "neg_post": ("已吸收", "吸收", "消失", "已消失", "已排除"),
    "unc_pre": ("疑", "疑似", "可疑", "怀疑", "倾向", "似", "拟诊"),
    "unc_post": ("不除外", "待排", "待除外", "不能除外", "不排除", "可能性大", "可能大", "待查"),
    "unc_both": ("可能", "考虑", "或"),
    "pseudo": ("无明显变化", "无变化", "未见变化", "较前无明显变化", "无明显改变", "未见明显变化"),
    "term": ("，", ",", "但", "但是", "然而"),
}


def _compile() -> list[tuple[str, re.Pattern]]:
    """One alternation per kind and language, longest cue first (so at one position "no
    evidence of" is tried before "no"): 14 scans of a sentence instead of one per cue."""
    out = []
    for kind, cues in ENGLISH_CUES.items():
        body = "|".join(sorted(cues, key=len, reverse=True))
        out.append((kind, re.compile(rf"(?<![a-z])(?:{body})(?![a-z])")))
    for kind, cues in CHINESE_CUES.items():
        body = "|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True))
        out.append((kind, re.compile(body)))
    return out


PATTERNS = _compile()


def find_cues(sentence: str) -> list[tuple[str, int, int, str]]:
    """(kind, start, end, text) of every cue in a lower-cased sentence, overlaps resolved
    longest-first, in text order."""
    found = [(kind, m.start(), m.end(), m.group()) for kind, pattern in PATTERNS
             for m in pattern.finditer(sentence)]
    found.sort(key=lambda c: (-(c[2] - c[1]), c[1]))
    kept: list[tuple[str, int, int, str]] = []
    for cue in found:
        if all(cue[2] <= k[1] or cue[1] >= k[2] for k in kept):
            kept.append(cue)
    return sorted(kept, key=lambda c: c[1])
