"""Mention-level assertion: is a finding the report names present, absent or uncertain?

An indication / history section is dropped (it says why the study was done, not what it
found). A report is cut into sentences that keep lists together (only . ; ! ? 。；！？, line
breaks and list numbering end a sentence; commas and 、 do not, so "No focal consolidation, pleural
effusion, or pneumothorax" stays one sentence and "no" reaches all three). In each sentence the
vocabulary's mentions (:mod:`.findings`) and the cues (:mod:`.cues`) are found, and each mention
takes the status of the cues whose scope covers it:

- a pre-cue ("no", "without", "possible", 未见, 疑) covers the mentions after it up to the next
  termination term ("but", "however", "which", "there is"; in Chinese also a comma) or the
  sentence end; of several pre-cues, the nearest decides;
- a post-cue ("is not seen", "has resolved", "cannot be excluded", 不除外, 待排) covers the
  mentions before it back to the previous termination term;
- ``unc_both`` cues ("versus", 可能, 考虑) cover both sides; pseudo-cues ("no change", "not
  only") cover nothing and hide the cue words inside them;
- uncertainty beats negation when both reach a mention ("cannot exclude" is a hedge, not a no).

Report level (as the CheXpert labeller aggregates): a label is 1 when any mention is present,
else -1 when any is uncertain, else 0 (negated, or not mentioned). ``normal`` is 1 when the report
names no present or uncertain finding and says something the vocabulary knows (a finding,
negated, or a normal statement); a report that names nothing is unknown, not normal.

Written as rules rather than taken from negspacy/medspacy: see docs/decisions.md (measured on the
same generated corpus; the rules here also read Chinese and keep lists in scope).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from chexnet.training.reports.cues import find_cues
from chexnet.training.reports.findings import CJK, NORMAL, Mention, Vocabulary

PRESENT, ABSENT, UNCERTAIN = 1, 0, -1
# Anonymisation tokens of public and hospital corpora: XXXX (IU / OpenI), [**...**] (MIMIC-II/III
# deidentification), ___ (MIMIC-CXR); each becomes one space-delimited token "_anon_".
ANONYMISED = re.compile(r"\[\*\*.*?\*\*\]|\bx{2,}\b|_{2,}", re.IGNORECASE)
ANON_TOKEN = " _anon_ "
# Sentence ends: . ! ? ; (not a decimal point), their Chinese forms, line breaks, and list
# numbering ("1." "2)" "3、" at a sentence start or after a space).
SENTENCE_END = re.compile(r"(?<!\d)\.(?!\d)|\.(?=\s|$)|[;!?。；！？\n\r]+"
                          r"|(?:^|\s)\d{1,2}[.)、](?!\d)")

ABBREVIATION = re.compile(r"\b(?:vs|dr|e\.g|i\.e|approx|no)\.(?=\s*[a-z0-9_])")
# Why the study was done is not what it found: an indication / history section is dropped up to
# the next heading ("INDICATION: evaluate for pneumonia" names no pneumonia; CheXpert's labeller
# reads the impression only).
HISTORY_SECTION = re.compile(
    r"(?:^|(?<=\n)|(?<=\. ))(?:indications?|history|clinical history|clinical information|"
    r"reason for (?:exam|examination|study)|临床病史|病史|临床诊断)\s*:.*?"
    r"(?=(?:findings|impression|conclusions?|comparison|technique|诊断意见|影像所见|所见)\s*:|$)",
    re.IGNORECASE | re.DOTALL)
# Section headings at a sentence start: "FINDINGS:", "IMPRESSION:", 诊断意见：
HEADING = re.compile(r"^(?:findings|impression|conclusions?|opinion|comparison|technique|"
                     r"history|indication|诊断意见|诊断|印象|影像所见|所见)\s*:\s*")


def mask_anonymised(text: str) -> str:
    return ANONYMISED.sub(ANON_TOKEN, text)


def split_sentences(text: str) -> list[str]:
    """Lower-cased, NFKC-normalised sentences, anonymisation tokens masked, lists kept whole.

    >>> split_sentences("No focal consolidation, pleural effusion, or pneumothorax. Heart size "
    ...                 "is normal.")
    ['no focal consolidation, pleural effusion, or pneumothorax', 'heart size is normal']
    """
    text = mask_anonymised(unicodedata.normalize("NFKC", text or "")).lower()
    text = HISTORY_SECTION.sub(" ", text)
    text = ABBREVIATION.sub(lambda m: m.group()[:-1], text)  # "vs." "dr." end no sentence
    out = []
    for piece in SENTENCE_END.split(text):
        piece = HEADING.sub("", " ".join(piece.split()).strip(" ,:-—*"))
        if piece and any(ch.isalpha() for ch in piece.replace("_anon_", "")):
            out.append(piece)
    return out


@dataclass(frozen=True)
class Assertion:
    label: str
    status: int  # PRESENT, ABSENT or UNCERTAIN
    start: int
    end: int


def _blocked(cues, lo: int, hi: int) -> bool:
    """Whether a termination term lies in [lo, hi)."""
    return any(kind == "term" and lo <= start < hi for kind, start, _, _ in cues)


def assert_sentence(sentence: str, vocab: Vocabulary) -> list[Assertion]:
    """The status of every mention in one (lower-cased) sentence."""
    mentions = vocab.mentions(sentence)
    if not mentions:
        return []
    cues = [c for c in find_cues(sentence)
            if not any(m.start <= c[1] < m.end for m in mentions)]  # cue words inside a term
    if CJK.search(sentence) is None:  # Chinese commas end a scope; English commas join lists
        cues = [c for c in cues if c[3] not in (",", "，")]
    return [Assertion(m.label, PRESENT if m.label == NORMAL else _status(m, cues), m.start,
                      m.end) for m in mentions]


def _status(m: Mention, cues) -> int:
    pre = [c for c in cues if c[2] <= m.start and c[0] in ("neg_pre", "unc_pre", "unc_both")
           and not _blocked(cues, c[2], m.start)]
    post = [c for c in cues if c[1] >= m.end and c[0] in ("neg_post", "unc_post", "unc_both")
            and not _blocked(cues, m.end, c[1])]
    kinds = set()
    if pre:
        kinds.add(max(pre, key=lambda c: c[2])[0])  # the nearest pre-cue decides
    if post:
        kinds.add(min(post, key=lambda c: c[1])[0])
    if kinds & {"unc_pre", "unc_post", "unc_both"}:
        return UNCERTAIN
    if kinds & {"neg_pre", "neg_post"}:
        return ABSENT
    return PRESENT


@dataclass(frozen=True)
class ReportLabels:
    """One report's labels (label -> 1/0/-1, every vocabulary label), whether it named anything
    the vocabulary knows, and its sentences that named nothing (for unmatched_clauses.csv)."""

    values: dict[str, int]
    matched: bool
    unmatched: tuple[str, ...]


def label_report(text: str, vocab: Vocabulary) -> ReportLabels:
    values = dict.fromkeys(vocab.labels, ABSENT)
    seen: dict[str, set[int]] = {}
    unmatched = []
    for sentence in split_sentences(text):
        found = assert_sentence(sentence, vocab)
        if not found:
            unmatched.append(sentence)
        for a in found:
            seen.setdefault(a.label, set()).add(a.status)
    for label, statuses in seen.items():
        values[label] = (PRESENT if PRESENT in statuses else
                         UNCERTAIN if UNCERTAIN in statuses else ABSENT)
    finding = any(values[lb] != ABSENT for lb in vocab.findings)
    values[NORMAL] = int(bool(seen) and not finding)
    return ReportLabels(values, bool(seen), tuple(unmatched))
