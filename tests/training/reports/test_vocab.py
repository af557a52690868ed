"""Label suggestions for clusters: Table I terms in Chinese and English, negation respected."""

from __future__ import annotations

import pytest

from chexnet.training.reports.vocab import suggest_label


@pytest.mark.parametrize(("clauses", "expected"), [
    (["心肺未见明显异常"], "normal"),
    (["no active disease seen"], "normal"),
    (["unremarkable chest"], "normal"),
    (["双肺纹理增多增粗"], "increased lung marking"),
    (["主动脉迂曲硬化"], "aortosclerosis"),
    (["left pleural effusion"], "pleural effusion"),
    (["右下肺见一约 cm结节"], "nodule"),
    # a negated finding is not that finding (edit distance alone would say it is)
    (["未见胸腔积液"], ""),
    (["no pleural effusion"], ""),
    (["pneumothorax cannot be excluded", "no pneumothorax"], "pneumothorax"),
    # boilerplate and too-short clauses get nothing
    (["请结合临床"], ""),
    (["follow-up recommended"], ""),
    (["no"], ""),
    (["abnormal opacity"], ""),
    # the first clause that matches decides (clauses come most frequent first)
    (["请结合临床", "心影增大"], "increased heart shadow"),
])
def test_suggestions(clauses, expected):
    assert suggest_label(clauses) == expected
