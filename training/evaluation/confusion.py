"""Confusion matrices for ``chexnet eval`` (the hospital CAD paper's Fig. 6a), computed with
scikit-learn, written to metrics.json, report.md and a PNG.

- single-label models (softmax): one K x K matrix, rows = true class, columns = predicted
  class (the most probable one), over the images carrying exactly one true label;
- multi-label models: one 2 x 2 matrix per label at its operating point
  ``[[TN, FP], [FN, TP]]`` (rows = truth negative/positive, columns = called negative/positive).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from chexnet.training.evaluation.markdown import md_escape


def single_label_confusion(y: np.ndarray, probs: np.ndarray, labels: tuple[str, ...]) -> dict:
    """K x K matrix of argmax(probs) vs the true class, over images with exactly one label."""
    y = np.atleast_2d(y) == 1  # uncertain (-1) is not the true class
    one = y.sum(axis=1) == 1
    truth = np.argmax(y[one], axis=1)
    predicted = np.argmax(np.atleast_2d(probs)[one], axis=1)
    k = len(labels)
    matrix = sk_confusion_matrix(truth, predicted, labels=np.arange(k)) if one.any() else (
        np.zeros((k, k), dtype=np.int64))
    n = int(one.sum())
    per_class_recall = {lb: (float(matrix[i, i] / matrix[i].sum()) if matrix[i].sum() else None)
                        for i, lb in enumerate(labels)}
    return {"kind": "single-label", "labels": list(labels), "rows": "true class",
            "columns": "predicted class (the most probable)",
            "matrix": matrix.astype(int).tolist(), "n_images": n,
            "images_not_single_label": int((~one).sum()),
            "accuracy": float(np.trace(matrix) / n) if n else None,
            "per_class_sensitivity": per_class_recall}


def multi_label_confusion(per_class: dict) -> dict:
    """Per-label 2 x 2 matrices from the operating-point counts ``chexnet eval`` computes."""
    return {"kind": "multi-label", "layout": "[[TN, FP], [FN, TP]] at the label's threshold",
            "per_label": {lb: [[e["counts"]["tn"], e["counts"]["fp"]],
                               [e["counts"]["fn"], e["counts"]["tp"]]]
                          for lb, e in per_class.items()}}


def report_lines(conf: dict) -> list[str]:
    """The report.md section."""
    lines = ["## Confusion matrix", ""]
    if conf["kind"] == "single-label":
        labels = [md_escape(lb) for lb in conf["labels"]]
        acc = conf["accuracy"]
        lines += [f"Single-label model: rows = true class, columns = predicted class (the most "
                  f"probable). {conf['n_images']} images carrying exactly one label; accuracy "
                  f"{'–' if acc is None else f'{acc:.3f}'}"
                  + (f"; {conf['images_not_single_label']} image(s) with several or no labels "
                     "are not in the matrix" if conf["images_not_single_label"] else "") + ".",
                  "", "| true \\ predicted | " + " | ".join(labels) + " |",
                  "|" + "---|" * (len(labels) + 1)]
        lines += ["| " + lb + " | " + " | ".join(str(v) for v in row) + " |"
                  for lb, row in zip(labels, conf["matrix"], strict=True)]
        if conf.get("figure"):
            lines += ["", f"![confusion matrix]({conf['figure']})"]
    else:
        lines += ["Per label, at its operating point (rows: truth, columns: call).", "",
                  "| Finding | TN | FP | FN | TP |", "|---|---|---|---|---|"]
        lines += [f"| {md_escape(lb)} | {m[0][0]} | {m[0][1]} | {m[1][0]} | {m[1][1]} |"
                  for lb, m in conf["per_label"].items()]
    return [*lines, ""]


def plot_confusion(path: Path, conf: dict) -> Path:
    """A K x K heat map with the counts written in the cells (matplotlib's Agg canvas)."""
    matrix = np.asarray(conf["matrix"])
    k = len(conf["labels"])
    fig = Figure(figsize=(1.2 + 0.6 * k, 1.0 + 0.6 * k), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    names = [lb.replace("$", r"\$") for lb in conf["labels"]]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if top and matrix[i, j] > top / 2 else "black")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
