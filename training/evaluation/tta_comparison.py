"""What test-time augmentation changes in ``chexnet eval``: AUROC with and without it.

When eval runs a model with ``--tta five-crop`` or ``ten-crop``, it also scores the same images
without augmentation and reports both mean AUROCs, the per-label difference, and patient-level
bootstrap CIs of the differences (paired: both columns share each resample, so the CI is of the
difference itself, not of two overlapping intervals). On a small test set the CI says whether
the difference is distinguishable from noise.
"""

from __future__ import annotations

import numpy as np

from chexnet.training.evaluation import metrics
from chexnet.training.evaluation.markdown import md_escape


def tta_comparison(mode: str, y: np.ndarray, probs_tta: np.ndarray, probs_none: np.ndarray,
                   labels: tuple[str, ...], patients, n_resamples: int = 1000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """AUROC per label and mean, with ``mode`` and with ``none``, on the same images."""
    n = len(labels)
    aurocs = {m: [metrics.auroc(y[:, c], p[:, c]) for c in range(n)]
              for m, p in ((mode, probs_tta), ("none", probs_none))}
    defined = [c for c in range(n) if metrics.undefined_auroc_reason(y[:, c]) is None]
    delta_ci, per_ci = None, [None] * n
    if n_resamples and defined:
        boot = metrics.bootstrap_auroc(np.column_stack([y, y]),
                                       np.column_stack([probs_tta, probs_none]), patients,
                                       n_resamples, seed, level)
        diff = boot.samples[:, :n] - boot.samples[:, n:]
        delta_ci = metrics.BootstrapAUROC(diff[:, defined].mean(axis=1)[:, None], level).ci(0)
        per = metrics.BootstrapAUROC(diff, level)
        per_ci = [per.ci(c) if c in defined else None for c in range(n)]
    mean = {m: float(np.mean([a[c] for c in defined])) if defined else None
            for m, a in aurocs.items()}
    return {
        "baseline": "none", "mode": mode, "n_images": len(y),
        "mean_auroc": mean,
        "delta_mean_auroc": (mean[mode] - mean["none"]) if defined else None,
        "delta_mean_auroc_ci": None if delta_ci is None else list(delta_ci),
        "mean_over": [labels[c] for c in defined],
        "per_class": {labels[c]: {
            "auroc_none": aurocs["none"][c], f"auroc_{mode}": aurocs[mode][c],
            "delta": (aurocs[mode][c] - aurocs["none"][c]) if c in defined else None,
            "delta_ci": None if per_ci[c] is None else list(per_ci[c])} for c in range(n)},
        "ci_method": (f"{level:.0%} percentile CI of the paired difference, {n_resamples} "
                      "patient-level bootstrap resamples" if n_resamples else "none"),
    }


def _f(v, fmt="{:.4f}") -> str:
    return "–" if v is None else fmt.format(v)


def _ci(ci) -> str:
    return "" if ci is None else f" ({ci[0]:+.4f} to {ci[1]:+.4f})"


def report_lines(section: dict) -> list[str]:
    """The report.md section for metrics.json's ``tta`` entry."""
    mode = section["mode"]
    lines = ["## Test-time augmentation", "",
             f"- Scored with: {md_escape(mode)}; the model card's thresholds assume: "
             f"{md_escape(section.get('thresholds_assume') or 'none')}"]
    timing = section.get("seconds_per_image") or {}
    if timing:
        lines.append("- Wall seconds per image (read + preprocess + model): " + ", ".join(
            f"{md_escape(m)} {t:.3f}" for m, t in timing.items()))
    comp = section.get("comparison")
    if not comp:
        return [*lines, ""]
    mean = comp["mean_auroc"]
    lines += [f"- Mean AUROC over {len(comp['mean_over'])} labels on {comp['n_images']} images: "
              f"none {_f(mean['none'])}, {md_escape(mode)} {_f(mean[mode])}; difference "
              f"{_f(comp['delta_mean_auroc'], '{:+.4f}')}{_ci(comp['delta_mean_auroc_ci'])} "
              f"[{md_escape(comp['ci_method'])}]", "",
              f"| Finding | AUROC none | AUROC {md_escape(mode)} | difference (95% CI) |",
              "|---|---|---|---|"]
    for label, e in comp["per_class"].items():
        lines.append(f"| {md_escape(label)} | {_f(e['auroc_none'])} | {_f(e[f'auroc_{mode}'])} "
                     f"| {_f(e['delta'], '{:+.4f}')}{_ci(e['delta_ci'])} |")
    return [*lines, ""]
