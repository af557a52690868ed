"""Confusion matrices of ``chexnet eval`` against hand counts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chexnet.training.evaluation import confusion
from chexnet.training.evaluation.eval_set import EvalSet
from chexnet.training.evaluation.metrics_summary import compute_metrics


def _hand_count(y, probs, k):
    """Rows = true class, columns = most probable class, over single-label images: a loop."""
    m = [[0] * k for _ in range(k)]
    for truth, p in zip(y, probs, strict=True):
        if sum(truth) != 1:
            continue
        t = list(truth).index(1)
        best = max(range(k), key=lambda j: (p[j], -j))
        m[t][best] += 1
    return m


def test_single_label_matrix_matches_a_hand_count():
    rng = np.random.default_rng(4)
    k, n = 4, 60
    y = np.eye(k, dtype=np.uint8)[rng.integers(0, k, n)]
    y[:5] = [1, 1, 0, 0]  # five images with two labels: not in the matrix
    logits = rng.standard_normal((n, k)) + 2.0 * y  # better than chance
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    conf = confusion.single_label_confusion(y, probs, ("a", "b", "c", "d"))
    assert conf["matrix"] == _hand_count(y.tolist(), probs.tolist(), k)
    assert conf["n_images"] == n - 5
    assert conf["images_not_single_label"] == 5
    diag = sum(conf["matrix"][i][i] for i in range(k))
    assert conf["accuracy"] == pytest.approx(diag / (n - 5))
    row_b = conf["matrix"][1]
    assert conf["per_class_sensitivity"]["b"] == pytest.approx(row_b[1] / sum(row_b))


def test_a_class_never_true_or_predicted_keeps_its_row_and_column():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    conf = confusion.single_label_confusion(y, probs, ("a", "b", "c"))
    assert conf["matrix"] == [[1, 1, 0], [1, 0, 0], [0, 0, 0]]
    assert conf["per_class_sensitivity"]["c"] is None


def test_multi_label_matrices_are_the_calls_at_each_threshold():
    rng = np.random.default_rng(7)
    y = (rng.random((40, 3)) < 0.4).astype(np.uint8)
    probs = np.clip(0.5 * y + 0.6 * rng.random((40, 3)), 0, 1)
    thresholds = np.array([0.3, 0.5, 0.7])
    data = EvalSet(tuple(f"i{i}" for i in range(40)), tuple(f"p{i}" for i in range(40)),
                   ("a", "b", "c"), y, probs)
    m = compute_metrics(data, thresholds, n_resamples=0)
    assert m["confusion"]["kind"] == "multi-label"
    for c, lb in enumerate("abc"):
        called = probs[:, c] >= thresholds[c]
        truth = y[:, c] == 1
        want = [[int(np.sum(~truth & ~called)), int(np.sum(~truth & called))],
                [int(np.sum(truth & ~called)), int(np.sum(truth & called))]]
        assert m["confusion"]["per_label"][lb] == want
    single = compute_metrics(data, thresholds, n_resamples=0, task="single-label")
    assert single["confusion"]["kind"] == "single-label"
    assert single["confusion"]["n_images"] == int((y.sum(axis=1) == 1).sum())


def test_report_section_escapes_labels_and_plot_is_written(tmp_path):
    evil = "<b>x</b>|y"
    y = np.eye(2, dtype=np.uint8)[[0, 1, 1, 0]]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    conf = confusion.single_label_confusion(y, probs, (evil, "normal"))
    lines = confusion.report_lines(conf)
    text = "\n".join(lines)
    assert "<b>" not in text
    assert "&lt;b&gt;x&lt;/b&gt;&#124;y" in text
    header = next(ln for ln in lines if ln.startswith("| true"))
    assert all(ln.count("|") == header.count("|") for ln in lines if ln.startswith("| &lt;b"))
    png = confusion.plot_confusion(tmp_path / "c.png", conf)
    with Image.open(png) as im:
        assert im.size[0] > 100
        assert im.size[1] > 100
