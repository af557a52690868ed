"""One label matcher, and "normal" as the absence of findings, everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chexnet.inference.package.card import (
    is_normal_label,
    label_key,
    match_finding,
    match_label,
    unknown_finding_message,
)
from chexnet.inference.scoring.prediction import ModelId, Prediction
from chexnet.inference.screen.results import abnormal_score, priority_of

LABELS = ("Atelectasis", "Pleural_Thickening", "No Finding")


@pytest.mark.parametrize(("text", "want"), [
    ("pleural thickening", "Pleural_Thickening"), ("PLEURAL_THICKENING", "Pleural_Thickening"),
    ("  Pleural-Thickening ", "Pleural_Thickening"), ("atelectasis", "Atelectasis"),
    ("no_finding", "No Finding"), ("Flu", None), ("Pleural", None)])
def test_a_label_is_named_in_any_spelling(text, want):
    assert match_label(text, LABELS) == want


def test_label_keys_and_normal_names():
    assert label_key("Pleural_Thickening") == label_key("pleural  thickening")
    assert [is_normal_label(x) for x in ("normal", "No Finding", "NO_FINDING", "Nodule")] == [
        True, True, True, False]


def _prediction(probs):
    return Prediction(path=Path("x.png"), model=ModelId("m", "1", "0" * 64, True),
                      status="analysed", labels=LABELS,
                      probabilities=np.array(probs, dtype=np.float32),
                      thresholds=np.array([0.5, 0.5, 0.5], dtype=np.float32),
                      cams=np.zeros((3, 7, 7), dtype=np.float32))


def test_normal_is_never_a_ranked_finding_nor_the_top_one():
    pred = _prediction([0.2, 0.3, 0.9])  # "No Finding" is the most probable output
    assert [f.label for f in pred.ranked] == ["Pleural_Thickening", "Atelectasis"]
    assert pred.top.label == "Pleural_Thickening"
    assert pred.positives == []  # No Finding above its threshold is no positive finding
    assert pred.to_dict()["findings"][0]["label"] == "Pleural_Thickening"


def test_normal_never_raises_a_screening_priority():
    probs, thresholds = [0.2, 0.3, 0.9], [0.5, 0.5, 0.5]
    assert abnormal_score(probs, LABELS) == pytest.approx(0.3)
    assert priority_of(probs, thresholds, LABELS, "max-above-threshold") == (1, 0.3)
    assert priority_of(probs, thresholds, LABELS, "abnormal") == (0, 0.3)
    assert priority_of([0.7, 0.3, 0.9], thresholds, LABELS, "max-above-threshold") == (0, 0.7)


def test_a_finding_is_a_label_that_is_not_normal():
    assert match_finding("pleural thickening", LABELS) == "Pleural_Thickening"
    assert match_finding("no finding", LABELS) is None  # normal has no heat map
    assert unknown_finding_message("Flu", LABELS) == (
        "--finding 'Flu' is not a label of this model; it knows: Atelectasis, Pleural_Thickening")
