"""Clauses for the clustering workflow that keep what edit distance cannot see: negation lists
whole, and which assertion group each clause belongs to.

The paper splits on every comma; that cuts "No focal consolidation, pleural effusion, or
pneumothorax" into the positive-looking "pleural effusion" and "or pneumothorax". Here a report is
cut into sentences (:func:`.assertion.split_sentences`: lists kept, anonymisation tokens
masked), digits are removed, and a sentence is cut further at a comma only where no negation is
open: in Chinese at every ，(a Chinese comma ends a cue's scope), in English unless a
negation cue before the comma still reaches past it ("no A, B" stays whole; "increased lung
markings, aortic sclerosis" is cut).

Each clause falls into one assertion group, computed from its own text (so the same clause is
always in the same group): ``finding`` (names a finding as present), ``uncertain`` (names one,
hedged), ``negated`` (names findings, all ruled out), ``normal`` (a normal statement) or
``other`` (names nothing the vocabulary knows). Clustering runs per group, so a negated clause
and a positive one never share a cluster.
"""

from __future__ import annotations

import re

from chexnet.training.reports.assertion import (
    PRESENT,
    UNCERTAIN,
    assert_sentence,
    split_sentences,
)
from chexnet.training.reports.clauses import normalise_clause, remove_digits
from chexnet.training.reports.cues import find_cues
from chexnet.training.reports.findings import CJK, NORMAL, Vocabulary

GROUPS = ("finding", "uncertain", "negated", "normal", "other")
CHINESE_COMMA = re.compile(r"[,，]")


def _negation_open(text: str) -> bool:
    """Whether a negation cue in ``text`` reaches its end (no termination term after it)."""
    last_neg, last_term = -1, -1
    for kind, start, _, cue in find_cues(text):
        if cue in (",", "，"):  # a Chinese scope end; in English commas join list items
            continue
        if kind == "neg_pre":
            last_neg = start
        elif kind == "term":
            last_term = start
    return last_neg > last_term


def _pieces(sentence: str) -> list[str]:
    if CJK.search(sentence):
        return CHINESE_COMMA.split(sentence)
    parts = sentence.split(",")
    out = [parts[0]]
    for part in parts[1:]:
        if _negation_open(out[-1]):
            out[-1] += "," + part
        else:
            out.append(part)
    return out


def mining_clauses(text: str) -> list[str]:
    """A report's clauses for clustering (module doc), normalised and digit-free."""
    out = []
    for sentence in split_sentences(text):
        for piece in _pieces(remove_digits(sentence)):
            clause = normalise_clause(piece)
            if clause:
                out.append(clause)
    return out


def clause_group(clause: str, vocab: Vocabulary) -> str:
    """The assertion group of one clause (module doc)."""
    found = assert_sentence(clause, vocab)
    findings = [a.status for a in found if a.label != NORMAL]
    if PRESENT in findings:
        return "finding"
    if UNCERTAIN in findings:
        return "uncertain"
    if findings:
        return "negated"
    return "normal" if found else "other"


def present_labels(clause: str, vocab: Vocabulary) -> list[str]:
    """The findings a clause names as present (the vocabulary's suggestion for its cluster)."""
    return sorted({a.label for a in assert_sentence(clause, vocab)
                   if a.status == PRESENT and a.label != NORMAL})
