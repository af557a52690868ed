"""ROC curve figures for ``chexnet eval`` (matplotlib's Agg canvas; no pyplot, no display).

One PNG per class with the operating point marked, a grid of all classes, and for the reader
comparison one PNG per finding with the radiologists' operating points on the model's curve
(as CheXNet's figure 2).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from chexnet.training.evaluation import metrics

MODEL_COLOUR = "#1f77b4"
READER_COLOURS = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MEAN_READER_COLOUR = "#ffd700"
MODEL_POINT_COLOUR = MODEL_COLOUR  # the model's star: never a reader's colour


def slug(text: str) -> str:
    """A safe file name stem for a label (labels come from files)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "label"


def _plain(text: str) -> str:
    """Text for a matplotlib title/legend: no mathtext from '$'."""
    return text.replace("$", r"\$")


def _new_figure(size=(4.2, 4.2)) -> Figure:
    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _axes_style(ax, title: str, small: bool = False) -> None:
    ax.plot([0, 1], [0, 1], color="0.75", lw=0.8, ls="--")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_title(_plain(title), fontsize=8 if small else 10)
    if not small:
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
    ax.tick_params(labelsize=6 if small else 8)


def _draw_class(ax, y, scores, entry: dict, label: str, small: bool = False) -> None:
    if entry.get("auroc") is None:
        _axes_style(ax, label, small)
        ax.text(0.5, 0.5, f"AUROC undefined:\n{entry.get('auroc_reason', '')}", ha="center",
                va="center", fontsize=7 if small else 9, color="0.3")
        return
    fpr, tpr = metrics.roc_points(y, scores)
    ci = entry.get("auroc_ci")
    ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    ax.plot(fpr, tpr, color=MODEL_COLOUR, lw=1.5)
    sens, spec = entry.get("sensitivity"), entry.get("specificity")
    if sens is not None and spec is not None:
        ax.plot([1 - spec], [sens], "o", color="#d62728", ms=4 if small else 6,
                label=f"threshold {entry['threshold']:.3g}")
        if not small:
            ax.legend(loc="lower right", fontsize=7)
    _axes_style(ax, f"{label}: AUROC {entry['auroc']:.3f}" + ("" if small else ci_text), small)


def plot_class_rocs(out_dir: Path, y: np.ndarray, probs: np.ndarray, labels, per_class: dict,
                    abnormal: tuple[np.ndarray, np.ndarray, dict] | None = None
                    ) -> dict[str, Path]:
    """One ROC PNG per class (and the abnormal score), plus ``roc_grid.png``; returns
    {label: path}, the grid under ``"_grid"``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = [(lb, y[:, c], probs[:, c], per_class[lb]) for c, lb in enumerate(labels)]
    if abnormal is not None:
        panels.append(("abnormal (any finding)", *abnormal))
    paths: dict[str, Path] = {}
    used: set[str] = set()
    for label, yc, sc, entry in panels:
        fig = _new_figure()
        _draw_class(fig.add_subplot(), yc, sc, entry, label)
        stem = slug(label)
        while stem in used:
            stem += "_"
        used.add(stem)
        paths[label] = out_dir / f"{stem}.png"
        fig.savefig(paths[label], bbox_inches="tight")
    cols = 4
    rows = -(-len(panels) // cols)
    fig = _new_figure((cols * 2.4, rows * 2.5))
    for k, (label, yc, sc, entry) in enumerate(panels):
        _draw_class(fig.add_subplot(rows, cols, k + 1), yc, sc, entry, label, small=True)
    fig.supxlabel("1 - specificity")
    fig.supylabel("sensitivity")
    fig.tight_layout()
    paths["_grid"] = out_dir.parent / "roc_grid.png"
    fig.savefig(paths["_grid"])
    return paths


def plot_reader_rocs(out_dir: Path, labels, probs: np.ndarray, comparison) -> dict[str, Path]:
    """Per finding: the model's ROC against each truth used, with every reader's (1 -
    specificity, sensitivity), the mean reader's, and the model's own operating point (its
    threshold) on each curve as markers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = comparison.summary
    readers = list(summary["comparison_readers"])
    colour = {r: READER_COLOURS[k % len(READER_COLOURS)] for k, r in enumerate(readers)}
    paths: dict[str, Path] = {}
    for c, label in enumerate(labels):
        fig = _new_figure((5.0, 5.0))
        ax = fig.add_subplot()
        curves = comparison.curves.get(label, [])
        starred = False
        for k, (name, truth) in enumerate(curves):
            if metrics.undefined_auroc_reason(truth) is not None:
                continue
            fpr, tpr = metrics.roc_points(truth, probs[:, c])
            auc = metrics.auroc(truth, probs[:, c])
            many = len(curves) > 1
            ax.plot(fpr, tpr, lw=1.0 if many else 1.6, alpha=0.6 if many else 1.0,
                    color=colour[readers[k]] if many else MODEL_COLOUR,
                    label=_plain(f"model vs {name} (AUROC {auc:.3f})"))
            starred = _model_point(ax, truth, probs[:, c],
                                   summary["per_finding"][label]["threshold"], starred)
        for reader, x, y, _truth in comparison.points.get(label, []):
            ax.plot([x], [y], "o", ms=7, color=colour[reader], markeredgecolor="black",
                    label=_plain(f"reader {reader}"))
        mean = summary["per_finding"][label]["mean_reader"]
        if mean["sensitivity"] is not None and mean["specificity"] is not None:
            ax.plot([1 - mean["specificity"]], [mean["sensitivity"]], "D", ms=8,
                    color=MEAN_READER_COLOUR, markeredgecolor="black", label="mean reader")
        if not ax.lines:
            ax.text(0.5, 0.5, "no positive or no negative image\nin the truth", ha="center",
                    va="center", color="0.3")
        _axes_style(ax, f"{label}: model vs radiologists")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=6)
        paths[label] = out_dir / f"{slug(label)}.png"
        fig.savefig(paths[label], bbox_inches="tight")
    return paths


def _model_point(ax, truth: np.ndarray, scores: np.ndarray, threshold: float,
                 in_legend: bool) -> bool:
    """Mark the model's operating point against ``truth`` (its threshold's 1 - specificity,
    sensitivity) with a star, in the legend once; returns whether the legend has it."""
    op = metrics.binary_stats(truth, scores >= threshold)
    if op["sensitivity"] is None or op["specificity"] is None:
        return in_legend
    ax.plot([1 - op["specificity"]], [op["sensitivity"]], "*", ms=14, color=MODEL_POINT_COLOUR,
            markeredgecolor="black", zorder=5,
            label="_nolegend_" if in_legend else f"model at its threshold {threshold:.3g}")
    return True
