"""Clause splitting, digit removal, normalisation and dedup (labels-from-reports, step one)."""

from __future__ import annotations

from collections import Counter

import pytest

from chexnet.training.reports.clauses import (
    dedup_clauses,
    normalise_clause,
    remove_digits,
    split_clauses,
)
from chexnet.training.reports.corpus import generate_corpus


@pytest.mark.parametrize(("text", "expected"), [
    # each Chinese boundary: 。；，、：
    ("双肺纹理增多。主动脉硬化", ["双肺纹理增多", "主动脉硬化"]),
    ("双肺纹理增多；主动脉硬化", ["双肺纹理增多", "主动脉硬化"]),
    ("双肺纹理增多，主动脉硬化", ["双肺纹理增多", "主动脉硬化"]),
    ("双肺纹理增多、主动脉硬化", ["双肺纹理增多", "主动脉硬化"]),
    ("诊断：胸腔积液", ["诊断", "胸腔积液"]),
    # full-width forms (！？) and line breaks
    ("心影增大！胸膜增厚？\n肺气肿", ["心影增大", "胸膜增厚", "肺气肿"]),
    # Western . ; ,
    ("Increased lung markings. Aortic sclerosis; pleural thickening, emphysema",
     ["increased lung markings", "aortic sclerosis", "pleural thickening", "emphysema"]),
])
def test_split_on_chinese_and_western_punctuation(text, expected):
    assert split_clauses(text) == expected


def test_digits_are_removed_whole_so_decimals_never_split_a_clause():
    # 1.5cm: the "." of a decimal is not a sentence end; the number goes, the unit stays
    assert split_clauses("右下肺见一约1.5cm结节。") == ["右下肺见一约 cm结节"]
    assert split_clauses("Nodule 1.5 cm in the right lower lobe. No effusion") == [
        "nodule cm in the right lower lobe", "no effusion"]
    # list numbering (1、 2. 3）) leaves nothing behind
    assert split_clauses("1、双肺纹理增多；2.主动脉硬化；3）心影增大") == [
        "双肺纹理增多", "主动脉硬化", "心影增大"]
    # full-width digits and ranges/percentages
    assert split_clauses("右肺第４前肋间结节，３-４mm，约２０%") == [
        "右肺第 前肋间结节", "mm", "约"]
    assert remove_digits("T7-8 12.5% x2").split() == ["T", "x"]


def test_the_same_finding_with_different_numbers_becomes_one_clause():
    a = split_clauses("右下肺见一约1.5cm结节")
    b = split_clauses("右下肺见一约3cm结节")
    assert a == b


def test_normalisation_folds_width_case_space_and_edge_punctuation():
    assert normalise_clause("  ＮＯ  Active\tDisease ） ") == "no active disease"
    assert normalise_clause("【胸腔积液】") == "胸腔积液"
    assert split_clauses("（心影增大）") == ["心影增大"]


def test_empty_and_punctuation_only_reports_give_no_clauses():
    assert split_clauses("") == []
    assert split_clauses("。；，、 ... 123") == []


def test_dedup_counts_match_an_independent_count_over_a_generated_corpus():
    corpus = generate_corpus(500, seed=3)
    u = dedup_clauses(corpus.reports)
    expected = Counter(c for r in corpus.reports for c in split_clauses(r))
    assert dict(zip(u.texts, u.counts, strict=True)) == dict(expected)
    assert len(set(u.texts)) == len(u.texts)
    assert u.n_occurrences == sum(expected.values())
    assert len(u) < u.n_occurrences / 3  # the point of dedup: far fewer distinct clauses
    # images per clause and clauses per image agree with each other and with the reports
    for row, idx in enumerate(u.per_image):
        assert {u.texts[i] for i in idx} == set(split_clauses(corpus.reports[row]))
        for i in idx:
            assert row in u.images[i]
    assert sum(len(x) for x in u.images) == sum(len(x) for x in u.per_image)


def test_a_clause_repeated_within_one_report_counts_each_time_but_the_image_once():
    u = dedup_clauses(["胸腔积液；胸腔积液", "胸腔积液"])
    assert u.texts == ("胸腔积液",)
    assert u.counts == (3,)
    assert u.images == ((0, 1),)
    assert u.per_image == ((0,), (0,))
