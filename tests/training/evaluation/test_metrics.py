"""Metrics of chexnet.training.evaluation.metrics on hand-worked examples and against
scikit-learn."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from chexnet.inference.preprocessing import CropBox
from chexnet.inference.render.cam import cam_on_image
from chexnet.training.evaluation import localisation, metrics


def _separable(n_pos=30, n_neg=50, seed=1):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(np.uint8)
    s = np.r_[rng.normal(1.0, 1.0, n_pos), rng.normal(0.0, 1.0, n_neg)]
    return y, np.round(s, 1)  # rounding makes ties


# --- the hospital CAD paper --------------------------------------------------------------------

def test_average_precision_worked_example_of_the_paper():
    # Fig. 7: the true labels are ranked 1, 2 and 4 -> (1/1 + 2/2 + 3/4) / 3 = 0.9167
    assert metrics.average_precision_from_ranks([1, 2, 4]) == pytest.approx(0.9167, abs=5e-5)
    assert metrics.average_precision_from_ranks([4, 1, 2]) == pytest.approx(11 / 12)


def test_per_image_average_precision_ranks_by_probability_and_skips_normal_images():
    probs = np.array([[0.9, 0.8, 0.7, 0.6, 0.1],   # true labels at ranks 1, 2, 4
                      [0.1, 0.2, 0.3, 0.4, 0.5],   # true label ranked 5th of 5
                      [0.5, 0.4, 0.3, 0.2, 0.1]])  # no true label: left out
    y = np.array([[1, 1, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    ap = metrics.per_image_average_precision(y, probs)
    assert ap[0] == pytest.approx(11 / 12)
    assert ap[1] == pytest.approx(1 / 5)
    assert np.isnan(ap[2])


def test_top3_sensitivity_on_a_hand_example():
    probs = np.array([[0.9, 0.8, 0.7, 0.6, 0.1],   # top 3: labels 0, 1, 2
                      [0.1, 0.2, 0.3, 0.4, 0.5],   # top 3: labels 4, 3, 2
                      [0.5, 0.1, 0.1, 0.9, 0.8]])  # top 3: labels 3, 4, 0
    y = np.array([[1, 0, 0, 1, 0],    # label 0 in top 3, label 3 not
                  [1, 0, 1, 0, 0],    # label 0 not, label 2 in
                  [1, 0, 0, 0, 0]])   # label 0 in
    per_class, overall = metrics.top_k_sensitivity(y, probs, k=3)
    assert per_class[0] == pytest.approx(2 / 3)
    assert per_class[2] == 1.0
    assert per_class[3] == 0.0
    assert np.isnan(per_class[[1, 4]]).all()  # no positives
    assert overall == pytest.approx(3 / 5)


def test_label_ranks_break_ties_by_label_order():
    ranks = metrics.label_ranks(np.array([[0.2, 0.5, 0.5, 0.1]]))
    assert ranks.tolist() == [[3, 1, 2, 4]]


# --- thresholds ---------------------------------------------------------------------------------

def test_choose_thresholds_max_f1_and_youden_on_a_hand_example(caplog):
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2])
    y = np.array([1, 1, 0, 1, 0, 0])
    # F1 at t = 0.9, 0.8, 0.7, 0.6, 0.3, 0.2: 1/2, 4/5, 2/3, 6/7, 3/4, 2/3 -> 0.6
    probs = np.column_stack([s, s])
    truth = np.column_stack([y, np.zeros(6, int)])  # the second class has no positive
    with caplog.at_level(logging.WARNING, logger="chexnet.training.evaluation.metrics"):
        chosen = metrics.choose_thresholds(truth, probs, "max_f1", labels=["A", "Empty"])
    assert chosen.tolist() == [0.6, 0.5]
    assert "Empty" in caplog.text
    # Youden at 0.8 = 2/3 - 0 and at 0.6 = 1 - 1/3: a tie, which goes to the higher threshold
    assert metrics.choose_thresholds(y[:, None], s[:, None], "youden").tolist() == [0.8]
    pred = s >= 0.6
    assert metrics.binary_stats(y, pred)["f1"] == pytest.approx(6 / 7)
    with pytest.raises(ValueError, match="max_f1"):
        metrics.choose_thresholds(truth, probs, "best")


def test_binary_stats_counts_and_undefined_rates():
    stats = metrics.binary_stats([1, 1, 0, 0, 0], [1, 0, 1, 0, 0])
    assert (stats["tp"], stats["fp"], stats["fn"], stats["tn"]) == (1, 1, 1, 2)
    assert stats["sensitivity"] == 0.5
    assert stats["specificity"] == pytest.approx(2 / 3)
    assert stats["f1"] == 0.5
    empty = metrics.binary_stats([0, 0], [0, 0])
    assert (empty["sensitivity"], empty["f1"], empty["specificity"]) == (None, None, 1.0)


# --- AUROC and the patient-level bootstrap --------------------------------------------------------

def test_auroc_undefined_without_both_classes():
    assert metrics.auroc([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert metrics.undefined_auroc_reason(np.zeros(3)) == "no positive images"
    assert metrics.undefined_auroc_reason(np.ones(3)) == "no negative images"


def test_weighted_auroc_with_unit_weights_is_sklearns_auroc():
    y, s = _separable()
    got = metrics.weighted_auroc(y, s, np.ones((1, len(y))))[0]
    assert got == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # integer weights = repeating images
    w = np.random.default_rng(3).integers(0, 4, len(y))
    rep = np.repeat(np.arange(len(y)), w)
    assert metrics.weighted_auroc(y, s, w[None, :].astype(float))[0] == pytest.approx(
        roc_auc_score(y[rep], s[rep]), abs=1e-12)


def test_bootstrap_weights_move_a_patients_images_together():
    patients = ["a", "a", "a", "b", "c", "c", "d"]
    w = np.concatenate(list(metrics.bootstrap_weights(patients, 300, seed=5, chunk=128)))
    assert w.shape == (300, 7)
    assert np.all(w[:, [0]] == w[:, 1:3])
    assert np.all(w[:, 4] == w[:, 5])
    # each resample draws as many patients as there are: 4
    per_patient = w[:, [0, 3, 4, 6]]
    assert np.all(per_patient.sum(axis=1) == 4)
    assert not np.all(w[:, 0] == w[:, 3])


def test_bootstrap_ci_contains_the_point_estimate_and_is_seeded():
    y, s = _separable()
    patients = [f"p{i}" for i in range(len(y))]
    boot = metrics.bootstrap_auroc(y[:, None], s[:, None], patients, 1000, seed=0)
    lo, hi = boot.ci(0)
    assert lo < roc_auc_score(y, s) < hi
    assert hi - lo < 0.3
    again = metrics.bootstrap_auroc(y[:, None], s[:, None], patients, 1000, seed=0)
    assert again.ci(0) == (lo, hi)
    assert metrics.bootstrap_auroc(y[:, None], s[:, None], patients, 1000, seed=1).ci(0) != (lo,
                                                                                             hi)


def test_bootstrap_resamples_patients_not_images():
    """Copying every image ten times (ten images per patient) must not narrow the CI when the
    bootstrap resamples patients: the patient-level CI is unchanged, exactly; a naive
    image-level bootstrap, which treats the copies as independent, narrows by ~sqrt(10)."""
    y, s = _separable()
    patients = [f"p{i}" for i in range(len(y))]
    base = metrics.bootstrap_auroc(y[:, None], s[:, None], patients, 1000, seed=0).ci(0)
    y10, s10 = np.repeat(y, 10), np.repeat(s, 10)
    patients10 = list(np.repeat(patients, 10))
    patient_level = metrics.bootstrap_auroc(y10[:, None], s10[:, None], patients10, 1000,
                                            seed=0).ci(0)
    image_level = metrics.bootstrap_auroc(y10[:, None], s10[:, None],
                                          [str(i) for i in range(len(y10))], 1000, seed=0).ci(0)
    assert patient_level == pytest.approx(base, abs=1e-12)
    width = base[1] - base[0]
    assert image_level[1] - image_level[0] < 0.5 * width


def test_one_prolific_patient_widens_the_patient_level_ci():
    """A patient with many images, all scored alike, is one draw, not many: the patient-level
    CI is wider than the naive image-level one."""
    y, s = _separable(20, 30, seed=4)
    y = np.r_[y, np.ones(40, np.uint8)]
    s = np.r_[s, np.full(40, 3.0)]  # one patient, 40 confident positive images
    patients = [f"p{i}" for i in range(50)] + ["many"] * 40
    patient_level = metrics.bootstrap_auroc(y[:, None], s[:, None], patients, 1000).ci(0)
    image_level = metrics.bootstrap_auroc(y[:, None], s[:, None],
                                          [str(i) for i in range(90)], 1000).ci(0)
    assert patient_level[1] - patient_level[0] > 1.3 * (image_level[1] - image_level[0])


def test_bootstrap_of_fourteen_classes_is_fast():
    import time

    rng = np.random.default_rng(0)
    y = (rng.random((3000, 14)) < 0.1).astype(np.uint8)
    probs = rng.random((3000, 14))
    patients = [str(i // 3) for i in range(3000)]
    start = time.perf_counter()
    boot = metrics.bootstrap_auroc(y, probs, patients, 1000, seed=0)
    assert time.perf_counter() - start < 15
    assert boot.samples.shape == (1000, 14)
    lo, hi = boot.mean_ci(range(14))
    assert lo < 0.5 < hi


def test_abnormal_truth_is_any_finding_and_score_the_highest():
    truth, score = metrics.abnormal_truth_and_score(np.array([[0, 1], [0, 0]]),
                                                    np.array([[0.2, 0.7], [0.4, 0.1]]))
    assert truth.tolist() == [1, 0]
    assert score.tolist() == [0.7, 0.4]


# --- pointing game ------------------------------------------------------------------------------

def test_pointing_game_on_a_synthetic_heat_map():
    heat = np.zeros((100, 200))
    heat[30, 150] = 1.0  # peak at row 30, column 150
    heat[:, :10] = np.nan
    assert localisation.pointing_game_hit(heat, (140, 20, 20, 20))     # x 140-160, y 20-40
    assert not localisation.pointing_game_hit(heat, (20, 20, 20, 20))  # right rows, wrong columns
    assert not localisation.pointing_game_hit(heat, (145, 40, 20, 20))  # right columns, wrong rows
    assert localisation.pointing_game_hit(heat, (160, 20, 20, 20), tolerance=15)
    assert not localisation.pointing_game_hit(np.ones((5, 5)), (0, 0, 5, 5))  # flat: no peak
    with pytest.raises(ValueError, match="finite"):
        localisation.pointing_game_hit(np.full((3, 3), np.nan), (0, 0, 3, 3))


def test_pointing_game_with_a_cam_mapped_onto_the_image():
    """A 7x7 CAM peaking in cell (row 1, col 5), over a crop box of x 100-800 and y 0-700 of an
    image 700 rows x 900 columns: the peak lands near x = 100 + 5.5*100, y = 1.5*100."""
    cam = np.zeros((7, 7), np.float32)
    cam[1, 5] = 1.0
    heat = cam_on_image(cam, CropBox(100, 0, 800, 700), image_shape=(700, 900))
    assert np.isnan(heat[:, :100]).all()
    assert localisation.pointing_game_hit(heat, (600, 100, 100, 100))
    assert not localisation.pointing_game_hit(heat, (100, 100, 100, 100))
    assert not localisation.pointing_game_hit(heat, (600, 500, 100, 100))
