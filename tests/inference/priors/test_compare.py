"""Comparing two predictions: deltas, new and resolved findings at the operating points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from chexnet.inference.package.card import ModelCard
from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.inference.priors.compare import (
    NotComparableError,
    card_thresholds,
    compare_predictions,
)
from chexnet.inference.scoring.prediction import ModelId, Prediction

LABELS = ("Effusion", "Mass", "Nodule", "No Finding")
MODEL = ModelId("m", "1", "0" * 64, demo=False)


def _pred(probs, status="analysed", labels=LABELS) -> Prediction:
    return Prediction(Path("x.png"), MODEL, status, labels,
                      probabilities=np.array(probs, dtype=np.float32),
                      thresholds=np.full(len(labels), 0.5, dtype=np.float32))


def test_new_resolved_and_order() -> None:
    thresholds = {"Effusion": 0.4, "Mass": 0.3}  # Nodule: the default 0.5
    now = _pred([0.45, 0.10, 0.70, 0.9])
    before = _pred([0.20, 0.35, 0.70, 0.1])
    cmp = compare_predictions(now, before, thresholds)
    assert [r.label for r in cmp.rows] == ["Nodule", "Effusion", "Mass"]  # now, descending;
    rows = {r.label: r for r in cmp.rows}                                   # no "No Finding"
    assert rows["Effusion"].status == "new"
    assert rows["Mass"].status == "resolved"
    assert rows["Nodule"].status == ""
    assert rows["Nodule"].arrow == "="
    assert rows["Effusion"].delta == pytest.approx(0.45 - 0.20)
    assert rows["Mass"].arrow == "↓"
    assert rows["Effusion"].arrow == "↑"
    assert cmp.new == ("Effusion",)
    assert cmp.resolved == ("Mass",)
    assert cmp.to_dict()["new"] == ["Effusion"]


def test_at_the_threshold_counts_as_above() -> None:
    cmp = compare_predictions(_pred([0.4, 0, 0, 0]), _pred([0.39, 0, 0, 0]), {"Effusion": 0.4})
    assert cmp.new == ("Effusion",)


def test_not_analysed_or_disjoint_refused() -> None:
    with pytest.raises(NotComparableError, match="prior image was not analysed"):
        compare_predictions(_pred([0.1] * 4), Prediction(Path("p"), MODEL, "not_analysed",
                                                         LABELS, reasons=("blank",)), {})
    with pytest.raises(NotComparableError, match="share no finding"):
        compare_predictions(_pred([0.1] * 4), _pred([0.1], labels=("Other",)), {})


def test_card_thresholds_fill_the_default() -> None:
    card = ModelCard(name="m", version="1", labels=LABELS, preprocess=PreprocessSpec(),
                     thresholds={"Mass": 0.3})
    assert card_thresholds(card)["Mass"] == 0.3
    assert card_thresholds(card)["Nodule"] == 0.5
