"""The bundled model tuned on one half of the NIH sample (by patient) and checked on the other:
for every class with at least 10 positives in the tuning half, the card's new-patient interval
contains the held-out sensitivity (issue 14). Scores 420 real images: about two minutes on CPU."""

from __future__ import annotations

import numpy as np
import pytest

from chexnet.inference.package.lookup import resolve_model
from chexnet.training.evaluation import calibration as cal
from chexnet.training.evaluation.tuning import tune
from chexnet.training.package.tune_package import TuneOptions, score_site


@pytest.fixture(scope="module")
def scored(nih_sample):
    package = resolve_model(None)
    if package.chosen_by != "bundled default":
        pytest.skip("no bundled default model in this checkout")
    opts = TuneOptions(labels=nih_sample / "Data_Entry_2017.csv", data=nih_sample,
                       rule="sensitivity=0.9", device="cpu")
    data, unreadable, _, _ = score_site(package, opts)
    assert not unreadable
    return package.card, data


def test_card_intervals_contain_the_held_out_sensitivity(scored):
    card, d = scored
    half = cal.patient_folds(d.patients, 2, seed=0)
    a, b = half == 0, half == 1
    result = tune(d.y[a], d.probs[a], [p for p, k in zip(d.patients, a, strict=True) if k],
                  d.labels, {lb: card.threshold(lb) for lb in d.labels},
                  dict.fromkeys(d.labels, "sensitivity=0.9"), n_resamples=500)
    checked = 0
    for c, label in enumerate(d.labels):
        entry = result.classes[label]
        yb = d.y[b][:, c].astype(bool)
        if entry["n_positive"] < 10:
            assert "kept" in entry
            assert entry["threshold"] == card.threshold(label)
            continue
        held = np.sum((d.probs[b][:, c] >= entry["threshold"]) & yb) / yb.sum()
        lo, hi = entry["new_patients"]["sensitivity_ci"]
        assert lo <= held <= hi, (label, held, lo, hi)
        assert entry["sensitivity"] >= 0.9
        checked += 1
    assert checked >= 10
