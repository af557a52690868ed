"""The model's part of metrics.json: per-class AUROC with patient-level bootstrap CIs, the
operating-point statistics, the hospital CAD paper's ranking metrics, normal vs abnormal, and
the confusion matrices."""

from __future__ import annotations

import numpy as np

from chexnet.training.data.labels import finding_columns
from chexnet.training.evaluation import confusion, metrics
from chexnet.training.evaluation.eval_set import EvalSet
from chexnet.training.evaluation.published import published_auroc

TOP_K = 3


def compute_metrics(data: EvalSet, thresholds: np.ndarray, n_resamples: int = 1000,
                    seed: int = 0, level: float = 0.95, task: str = "multi-label",
                    published: dict | None = None, threshold_rules: list[str] | None = None
                    ) -> dict:
    """Everything metrics.json holds about the model on ``data`` (inputs and notes aside).
    ``task`` picks the confusion matrix: K x K of the argmax (single-label) or per-label 2 x 2
    at the thresholds (multi-label). ``published`` (:func:`.published.published_comparison`)
    says whether the paper's AUROCs stand beside the model's; ``threshold_rules``, how each
    label's threshold was chosen.

    Normal / No Finding is the absence of findings: the ranking metrics (per-image AP, top-3)
    and the abnormal score leave it out."""
    y, probs, labels = data.y, data.probs, data.labels
    published = published or {"made": False, "reason": "not asked for"}
    finding = finding_columns(labels)
    fy, fp = y[:, finding], probs[:, finding]
    abn_y, abn_s = _abnormal(fy, fp)
    boot = None
    if n_resamples:
        boot = metrics.bootstrap_auroc(np.column_stack([y, abn_y]),
                                       np.column_stack([probs, abn_s]), data.patients,
                                       n_resamples, seed, level)
    top3 = np.full(len(labels), np.nan)
    top3[finding], top3_all = metrics.top_k_sensitivity(fy, fp, TOP_K)
    per_class, defined = {}, []
    for c, label in enumerate(labels):
        stats = metrics.binary_stats(y[:, c], probs[:, c] >= thresholds[c])
        reason = metrics.undefined_auroc_reason(y[:, c])
        entry = {"auroc": metrics.auroc(y[:, c], probs[:, c]),
                 "auroc_ci": _ci(boot.ci(c)) if boot and reason is None else None,
                 "n_positive": int((y[:, c] == 1).sum()), "n_negative": int((y[:, c] == 0).sum()),
                 "n_uncertain_left_out": int((y[:, c] < 0).sum()),
                 "threshold": float(thresholds[c]), "sensitivity": stats["sensitivity"],
                 "specificity": stats["specificity"], "ppv": stats["ppv"], "f1": stats["f1"],
                 "counts": {k: stats[k] for k in ("tp", "fp", "fn", "tn")},
                 "top3_sensitivity": None if np.isnan(top3[c]) else float(top3[c]),
                 "published_chexnet_auroc": published_auroc(label, published)}
        if threshold_rules is not None:
            entry["threshold_rule"] = threshold_rules[c]
        if reason is None:
            defined.append(c)
            if boot is not None:
                entry["auroc_ci_undefined_resamples"] = boot.n_undefined(c)
        else:
            entry["auroc_reason"] = reason
        per_class[label] = entry
    ap = metrics.per_image_average_precision(fy, fp)
    multi = fy.sum(axis=1) >= 2
    abn_reason = metrics.undefined_auroc_reason(abn_y)
    return {
        "n_images": len(data.ids), "n_patients": metrics.patient_codes(data.patients)[1],
        "labels": list(labels),
        "mean_auroc": (float(np.mean([per_class[labels[c]]["auroc"] for c in defined]))
                       if defined else None),
        "mean_auroc_ci": _ci(boot.mean_ci(defined)) if boot else None,
        "mean_auroc_over": [labels[c] for c in defined],
        "mean_auroc_excluded": {lb: e["auroc_reason"] for lb, e in per_class.items()
                                if "auroc_reason" in e},
        "per_class": per_class,
        "per_image_average_precision": _nan_mean(ap),
        "per_image_average_precision_n_images": int(np.isfinite(ap).sum()),
        "per_image_average_precision_multi_label": _nan_mean(ap[multi]),
        "per_image_average_precision_multi_label_n_images": int(multi.sum()),
        "top3_sensitivity": {"k": TOP_K, "overall": top3_all,
                             "per_class": {lb: per_class[lb]["top3_sensitivity"]
                                           for lb in labels}},
        "abnormal_auroc": metrics.auroc(abn_y, abn_s),
        "abnormal_auroc_ci": _ci(boot.ci(len(labels))) if boot and abn_reason is None else None,
        "abnormal_auroc_reason": abn_reason,
        "abnormal_definition": "score = highest finding probability; truth = any finding"
                               + ("" if len(finding) == len(labels) else
                                  " (normal / No Finding is not a finding)"),
        "n_abnormal": int((abn_y == 1).sum()),
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "level": level,
                      "unit": "patient", "method": "percentile"},
        "task": task,
        "published_comparison": published,
        "confusion": (confusion.single_label_confusion(y, probs, labels)
                      if task == "single-label" else confusion.multi_label_confusion(per_class)),
    }


def _abnormal(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truth and score of normal vs abnormal over the finding columns (none: no finding)."""
    if y.shape[1] == 0:
        return np.zeros(len(y), dtype=np.uint8), np.zeros(len(y))
    return metrics.abnormal_truth_and_score(y, probs)


def _ci(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def _nan_mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None
