"""Site tuning on predictions whose truth is known: the rule's thresholds hold on held-out
patients, small classes keep their old threshold, and calibration removes most of a known
miscalibration on held-out folds (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from chexnet.training.evaluation import calibration as cal
from chexnet.training.evaluation.thresholds import parse_rule, rule_threshold
from chexnet.training.evaluation.tuning import tune

LABELS = ("A", "B", "rare")


def synthetic(n: int, seed: int, images_per_patient: int = 2):
    """Truth, calibrated probabilities (the true risk) and patients: a finding is present with
    probability ``risk``, and ``risk`` is the score, so the scores are calibrated by design."""
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"p{seed}-{i}" for i in range(n // images_per_patient)],
                         images_per_patient)
    z = rng.normal(size=(len(patients), len(LABELS))) * 1.5 + np.array([-0.5, -1.0, -6.0])
    risk = 1 / (1 + np.exp(-z))
    y = rng.random(risk.shape) < risk
    y[:, 2] = False
    y[:4, 2] = True  # 4 positives: under --min-positives
    return y, risk, tuple(patients)


def test_parse_rule_spellings():
    assert parse_rule("Sensitivity=0.90") == "sensitivity=0.9"
    assert parse_rule("max_f1") == "max-f1"
    assert parse_rule("youden") == "youden"
    for bad in ("sensitivity=1.5", "sensitivity", "recall=0.9", "specificity=x"):
        with pytest.raises(ValueError, match="is not one of"):
            parse_rule(bad)


def test_rule_thresholds_on_a_small_case():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    s = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.4, 0.2, 0.1])
    assert rule_threshold(y, s, "sensitivity=0.75") == 0.6  # the highest that finds 3 of 4
    assert rule_threshold(y, s, "specificity=0.75") == 0.6  # the lowest that clears 3 of 4
    assert rule_threshold(y, s, "specificity=0.99") == 0.8  # above the 0.7 negative
    assert rule_threshold(np.zeros(8, bool), s, "sensitivity=0.9") is None


@pytest.mark.parametrize("rule", ["sensitivity=0.9", "specificity=0.95"])
def test_thresholds_hold_on_held_out_patients(rule):
    y, p, patients = synthetic(2000, seed=1)
    yh, ph, _ = synthetic(2000, seed=2)  # new patients of the same site
    result = tune(y, p, patients, LABELS, {"A": 0.5, "B": 0.5, "rare": 0.3},
                  dict.fromkeys(LABELS, rule), n_resamples=300)
    kind, target = rule.split("=")
    for c, label in enumerate(LABELS[:2]):
        entry = result.classes[label]
        called = ph[:, c] >= entry["threshold"]
        held = (called & yh[:, c]).sum() / yh[:, c].sum() if kind == "sensitivity" else \
            (~called & ~yh[:, c]).sum() / (~yh[:, c]).sum()
        assert entry[kind] >= float(target)
        lo, hi = entry["new_patients"][f"{kind}_ci"]
        assert lo <= held <= hi, (label, held, lo, hi)
        lo, hi = entry[f"{kind}_ci"]
        assert lo <= float(target) <= hi
        assert held >= lo  # at the target within the interval, on patients it never saw


def test_classes_under_min_positives_keep_their_threshold():
    y, p, patients = synthetic(400, seed=3)
    result = tune(y, p, patients, LABELS, {"A": 0.5, "B": 0.5, "rare": 0.3},
                  dict.fromkeys(LABELS, "max-f1"), min_positives=10, n_resamples=50,
                  calibrate=True)
    rare = result.classes["rare"]
    assert result.kept == ["rare"]
    assert rare["threshold"] == result.thresholds["rare"] == 0.3
    assert "4 positive(s), fewer than --min-positives 10" in rare["kept"]
    assert "new_patients" not in rare
    assert not result.calibration.fitted[2]  # and it is not calibrated either
    assert (result.calibration.a[2], result.calibration.b[2]) == (1.0, 0.0)


def test_ece_of_known_bins():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.05, 0.05, 0.05, 0.05, 0.95, 0.95, 0.95, 0.95])
    # bin 0: mean p 0.05, frequency 1/4; bin 9: 0.95 vs 1  ->  (4 * 0.2 + 4 * 0.05) / 8
    assert cal.ece(y, p) == pytest.approx(0.125)
    y, risk, _ = synthetic(4000, seed=4)
    assert cal.ece(y[:, 0], risk[:, 0]) < 0.03  # calibrated by design


def test_calibration_halves_the_ece_of_powered_probabilities_on_held_out_folds():
    y, risk, patients = synthetic(3000, seed=5)
    miscalibrated = risk ** 3  # deliberately overconfident in "no"
    result = tune(y, miscalibrated, patients, LABELS, {}, dict.fromkeys(LABELS, "youden"),
                  calibrate=True, n_resamples=0)
    for label in LABELS[:2]:
        entry = result.ece["classes"][label]
        assert entry["fitted"]
        assert entry["ece_after"] <= 0.5 * entry["ece_before"], entry
    assert result.ece["mean_ece_after"] <= 0.5 * result.ece["mean_ece_before"]
    # cross-fitted: never measured on the images a fold's parameters were fitted on
    folds = cal.patient_folds(patients, 5)
    assert all(len({folds[i] for i in np.flatnonzero(np.array(patients) == pt)}) == 1
               for pt in patients[:50])
    # monotone: the calibrated probabilities rank the images as before
    calibrated = result.calibration.apply(miscalibrated)
    for c in range(2):
        order = np.argsort(miscalibrated[:, c], kind="stable")
        assert np.all(np.diff(calibrated[order, c]) >= 0)
