"""``chexnet eval``'s calibration: per-class expected calibration error and the reliability
diagram (observed frequency of the finding against the mean predicted probability, per
equal-width bin; :mod:`.calibration`). Multi-label models only: a softmax's classes are not
separate probabilities of presence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from chexnet.training.evaluation import calibration as cal
from chexnet.training.evaluation.markdown import md_escape

FIGURE = "reliability.png"


def calibration_section(y: np.ndarray, probs: np.ndarray, labels) -> dict:
    """metrics.json's ``calibration``: per class the ECE and the bins it was computed from."""
    per_class = {}
    for c, label in enumerate(labels):
        count, mean_p, freq = cal.reliability_bins(y[:, c], probs[:, c])
        per_class[label] = {"ece": cal.ece(y[:, c], probs[:, c]),
                            "bins": {"count": count.astype(int).tolist(),
                                     "mean_probability": _list(mean_p),
                                     "observed_frequency": _list(freq)}}
    eces = [e["ece"] for e in per_class.values() if e["ece"] is not None]
    return {"ece": f"expected calibration error, {cal.ECE_BINS} equal-width bins: sum over bins "
                   "of (images in bin / images) x |observed frequency - mean probability|",
            "n_bins": cal.ECE_BINS, "mean_ece": float(np.mean(eces)) if eces else None,
            "per_class": per_class, "figure": FIGURE}


def _list(values: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in values]


def plot_reliability(path: Path, section: dict, title: str = "") -> Path:
    """A grid of per-class reliability diagrams (marker area ~ images in the bin)."""
    labels = list(section["per_class"])
    cols = 5
    rows = max(1, -(-len(labels) // cols))
    fig = Figure(figsize=(2.3 * cols, 2.4 * rows + (0.4 if title else 0)), dpi=100)
    FigureCanvasAgg(fig)
    for k, label in enumerate(labels):
        entry = section["per_class"][label]
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.plot([0, 1], [0, 1], color="0.75", lw=0.8, ls="--")
        bins = entry["bins"]
        pts = [(p, f, n) for p, f, n in zip(bins["mean_probability"], bins["observed_frequency"],
                                            bins["count"], strict=True) if n]
        if pts:
            p, f, n = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
            ax.plot(p, f, color="#1f77b4", lw=1)
            ax.scatter(p, f, s=8 + 60 * n / n.max(), color="#1f77b4", zorder=3)
        ece = entry["ece"]
        ax.set_title(f"{label.replace('$', '')}\nECE {'-' if ece is None else f'{ece:.3f}'}",
                     fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title.replace("$", ""), fontsize=10)
    fig.supxlabel("mean predicted probability", fontsize=8)
    fig.supylabel("observed frequency", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


def report_lines(section: dict) -> list[str]:
    rows = [f"| {md_escape(lb)} | {_f(e['ece'])} |" for lb, e in section["per_class"].items()]
    return ["## Calibration", "",
            f"Expected calibration error (ECE) per class, {section['n_bins']} equal-width "
            "probability bins: the image-weighted mean gap between the share of images that "
            "have the finding and the mean predicted probability, bin by bin (0 = the "
            "probabilities mean what they say). `chexnet tune --calibrate` fits a correction.",
            "", "| Finding | ECE |", "| --- | --- |", *rows, "",
            f"Mean ECE: {_f(section['mean_ece'])}.", "",
            f"![Reliability diagrams]({section['figure']})", ""]


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
