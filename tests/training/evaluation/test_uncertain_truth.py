"""``chexnet eval`` on a labels.csv holding -1 (uncertain, as ``labels-from-reports --auto``
writes it): each finding's AUROC, operating point, threshold and calibration leave its uncertain
images out (a per-finding mask), and the output says how many. Checked against scikit-learn on
the masked subset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from chexnet.inference.cli.main import main
from chexnet.training.evaluation import calibration, metrics
from tests.training.helpers import write_csv

LABELS = ("Effusion", "Pneumonia")


@pytest.fixture
def uncertain_set(tmp_path):
    """60 images, two findings; 9 Effusion and 14 Pneumonia values are -1, and the model scores
    the uncertain images low (so counting them as positive would lower the AUROC)."""
    rng = np.random.default_rng(3)
    n = 60
    y = (rng.random((n, 2)) < 0.35).astype(int)
    probs = np.clip(0.3 * y + 0.7 * rng.random((n, 2)), 0, 1)
    for c, k in ((0, 9), (1, 14)):
        rows = rng.choice(n, size=k, replace=False)
        y[rows, c] = -1
        probs[rows, c] = 0.1 * rng.random(k)
    names = [f"img{i:02d}.png" for i in range(n)]
    labels = write_csv(tmp_path / "labels.csv", [["path", "patient_id", *LABELS]]
                       + [[nm, f"p{i // 2}", *row] for i, (nm, row)
                          in enumerate(zip(names, y.tolist(), strict=True))])
    preds = write_csv(tmp_path / "preds.csv", [["Image Index", *LABELS]]
                      + [[nm, *(f"{v:.6f}" for v in row)]
                         for nm, row in zip(names, probs, strict=True)])
    return labels, preds, y, probs


def test_eval_leaves_uncertain_out_of_each_findings_auroc_and_says_so(uncertain_set, tmp_path,
                                                                     capsys):
    labels, preds, y, probs = uncertain_set
    out = tmp_path / "out"
    assert main(["eval", "--predictions", str(preds), "--labels", str(labels), "--out",
                 str(out), "--bootstrap", "200"]) == 0
    stdout = capsys.readouterr().out
    assert "23 uncertain (-1) label value(s) left out" in stdout
    assert "Effusion 9" in stdout
    assert "Pneumonia 14" in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["dropped"]["uncertain_left_out"] == {"Effusion": 9, "Pneumonia": 14}
    for c, label in enumerate(LABELS):
        keep = y[:, c] >= 0
        entry = m["per_class"][label]
        expected = roc_auc_score(y[keep, c], probs[keep, c])
        assert entry["auroc"] == pytest.approx(expected, abs=1e-9)
        # the bug this guards against: -1 read as a positive gives another number
        assert abs(expected - roc_auc_score(y[:, c] != 0, probs[:, c])) > 0.05
        assert (entry["n_positive"], entry["n_negative"], entry["n_uncertain_left_out"]) == (
            int((y[:, c] == 1).sum()), int((y[:, c] == 0).sum()), int((~keep).sum()))
        counts = entry["counts"]
        assert sum(counts.values()) == int(keep.sum())  # operating point on known truth only
        called = probs[keep, c] >= entry["threshold"]
        assert counts["tp"] == int((called & (y[keep, c] == 1)).sum())
        lo, hi = entry["auroc_ci"]
        assert lo <= entry["auroc"] <= hi


def test_metrics_mask_uncertain_per_finding(uncertain_set):
    _, _, y, probs = uncertain_set
    for c in range(2):
        keep = y[:, c] >= 0
        yk, pk = y[keep, c], probs[keep, c]
        # the bootstrap's vectorised AUROC with all weights 1 equals sklearn on the subset
        ones = np.ones((1, len(y)))
        assert metrics.weighted_auroc(y[:, c], probs[:, c], ones)[0] == pytest.approx(
            roc_auc_score(yk, pk), abs=1e-12)
        assert metrics.choose_thresholds(y[:, [c]], probs[:, [c]])[0] == (
            metrics.choose_thresholds(yk[:, None], pk[:, None])[0])
        assert calibration.ece(y[:, c], probs[:, c]) == pytest.approx(calibration.ece(yk, pk))
        fpr, tpr = metrics.roc_points(y[:, c], probs[:, c])
        assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(yk, pk))
    # all-uncertain is undefined, not "no negatives"
    assert metrics.undefined_auroc_reason(np.array([-1, -1, 1])) == "no negative images"
    assert metrics.auroc(np.array([-1, 0, 1]), np.array([0.9, 0.2, 0.8])) == 1.0


def test_abnormal_truth_is_uncertain_only_without_a_positive():
    y = np.array([[1, -1], [0, -1], [0, 0]])
    truth, _ = metrics.abnormal_truth_and_score(y, np.zeros((3, 2)))
    assert truth.tolist() == [1, -1, 0]


def test_tune_leaves_uncertain_out_like_the_masked_subset(uncertain_set):
    from chexnet.training.evaluation.tuning import tune

    _, _, y, probs = uncertain_set
    patients = tuple(f"p{i // 2}" for i in range(len(y)))
    rules = dict.fromkeys(LABELS, "max-f1")
    full = tune(y, probs, patients, LABELS, {}, rules, min_positives=3, n_resamples=50,
                calibrate=True, folds=3)
    for c, label in enumerate(LABELS):
        keep = y[:, c] >= 0
        sub = tune(y[keep][:, [c]], probs[keep][:, [c]], tuple(np.array(patients)[keep]),
                   (label,), {}, {label: "max-f1"}, min_positives=3, n_resamples=50,
                   calibrate=True, folds=3)
        got, want = full.classes[label], sub.classes[label]
        assert got["threshold"] == want["threshold"]
        assert got["counts"] == want["counts"]
        assert got["n_uncertain_left_out"] == int((~keep).sum())
        assert (got["n_positive"], got["n_negative"]) == (want["n_positive"], want["n_negative"])
        assert full.calibration.a[c] == pytest.approx(sub.calibration.a[0])
