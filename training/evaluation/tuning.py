"""Site tuning (``chexnet tune``): operating thresholds, and optionally a calibration, chosen
on a site's own labelled images, with what they are worth on that sample.

Per class: the rule's threshold (:func:`.thresholds.rule_threshold`) on the local probabilities
(calibrated first with ``calibrate``: the graph will output calibrated probabilities, so the
thresholds must be on that scale), the sensitivity and specificity there, and two patient-level
bootstrap 95% intervals:

- ``*_ci``: the threshold held fixed, patients resampled: how precisely this sample measures the
  operating point (the interval the brief of issue 14 asks for).
- ``new_patients``: the rule re-applied to each resample's drawn patients and measured on the
  patients it did not draw (out-of-bag): the spread a *new* sample of patients would show,
  including the luck of where the threshold fell. Wider; what to expect on held-out patients.

A class with fewer than ``min_positives`` positives (or whose rule is undefined) keeps the
source card's threshold and is not calibrated, and the result says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from chexnet.training.data.uncertain import known
from chexnet.training.evaluation import calibration as cal
from chexnet.training.evaluation.metrics import bootstrap_weights
from chexnet.training.evaluation.thresholds import rule_threshold

DEFAULT_MIN_POSITIVES = 10


@dataclass
class TuneResult:
    """Per label: the new threshold and its entry for the card; the calibration, if any."""

    labels: tuple[str, ...]
    thresholds: dict[str, float]
    classes: dict[str, dict]
    kept: list[str]  # labels that kept the source threshold
    calibration: cal.Calibration | None = None
    ece: dict = field(default_factory=dict)  # the card's calibration summary


def _rate(hits: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, hits / np.where(total > 0, total, 1), np.nan)


def _ci(samples: np.ndarray) -> list[float] | None:
    samples = samples[np.isfinite(samples)]
    if len(samples) == 0:
        return None
    return [round(float(v), 4) for v in np.percentile(samples, [2.5, 97.5])]


def fixed_point_cis(y: np.ndarray, called: np.ndarray, weights: np.ndarray
                    ) -> tuple[list | None, list | None]:
    """Sensitivity and specificity CIs of fixed calls under bootstrap image ``weights`` [B, N]."""
    y, called = np.asarray(y, np.float64), np.asarray(called, np.float64)
    sens = _rate(weights @ (y * called), weights @ y)
    spec = _rate(weights @ ((1 - y) * (1 - called)), weights @ (1 - y))
    return _ci(sens), _ci(spec)


def new_patient_cis(y: np.ndarray, scores: np.ndarray, rule: str, weights: np.ndarray
                    ) -> tuple[list | None, list | None]:
    """The rule chosen on each resample's patients, measured on the patients left out."""
    y = np.asarray(y).astype(bool)
    sens, spec = [], []
    for w in weights:
        inbag = np.repeat(np.arange(len(y)), w.astype(np.int64))
        out = w == 0
        thr = rule_threshold(y[inbag], scores[inbag], rule)
        if thr is None or not out.any():
            continue
        called, yo = scores[out] >= thr, y[out]
        sens.append(np.sum(called & yo) / yo.sum() if yo.any() else np.nan)
        spec.append(np.sum(~called & ~yo) / (~yo).sum() if (~yo).any() else np.nan)
    return _ci(np.asarray(sens, float)), _ci(np.asarray(spec, float))


def tune(y: np.ndarray, probs: np.ndarray, patients: Sequence[str], labels: Sequence[str],
         old: Mapping[str, float], rules: Mapping[str, str], *,
         min_positives: int = DEFAULT_MIN_POSITIVES, calibrate: bool = False,
         n_resamples: int = 1000, folds: int = cal.DEFAULT_FOLDS, seed: int = 0) -> TuneResult:
    """Tune every label of ``labels`` (columns of ``y`` / ``probs``) by its rule in ``rules``;
    ``old``: the source card's thresholds (kept where a class cannot be tuned). A truth of -1
    (uncertain) is left out of that class's threshold, counts, CIs and calibration."""
    y = np.asarray(y)
    probs = np.asarray(probs, dtype=np.float64)
    n_pos, n_neg = (y == 1).sum(axis=0), (y == 0).sum(axis=0)
    tunable = [c for c in range(len(labels)) if n_pos[c] >= min_positives
               and rule_threshold(y[:, c], probs[:, c], rules[labels[c]]) is not None]
    calib, scored, summary = None, probs, {}
    if calibrate:
        calib = cal.fit_calibration(y, probs, tunable)
        summary = calibration_summary(y, probs, patients, labels, calib, tunable, folds, seed)
        calib = _do_no_harm(calib, summary, labels)
        scored = calib.apply(probs).astype(np.float64)
    weights = (np.concatenate(list(bootstrap_weights(patients, n_resamples, seed)))
               if n_resamples else np.empty((0, len(y))))
    result = TuneResult(tuple(labels), {}, {}, [], calib)
    for c, label in enumerate(labels):
        keep = known(y[:, c])
        rule, yc, sc, wc = rules[label], y[keep, c] == 1, scored[keep, c], weights[:, keep]
        entry = {"rule": rule, "n_positive": int(n_pos[c]), "n_negative": int(n_neg[c]),
                 "n_uncertain_left_out": int((~keep).sum()),
                 "source_threshold": round(float(old.get(label, 0.5)), 6)}
        if c in tunable:
            thr = rule_threshold(yc, sc, rule)
            entry["new_patients"] = dict(zip(("sensitivity_ci", "specificity_ci"),
                                             new_patient_cis(yc, sc, rule, wc), strict=True))
        else:
            thr = float(old.get(label, 0.5))
            entry["kept"] = (f"kept the source threshold: {int(n_pos[c])} positive(s), fewer "
                             f"than --min-positives {min_positives}" if n_pos[c] < min_positives
                             else "kept the source threshold: the rule is undefined here")
            result.kept.append(label)
        called = sc >= thr
        tp, fn = int(np.sum(called & yc)), int(np.sum(~called & yc))
        fp, tn = int(np.sum(called & ~yc)), int(np.sum(~called & ~yc))
        sens_ci, spec_ci = fixed_point_cis(yc, called, wc)
        entry.update({"threshold": round(float(thr), 6),
                      "sensitivity": round(tp / (tp + fn), 4) if tp + fn else None,
                      "sensitivity_ci": sens_ci,
                      "specificity": round(tn / (tn + fp), 4) if tn + fp else None,
                      "specificity_ci": spec_ci,
                      "counts": {"tp": tp, "fp": fp, "fn": fn, "tn": tn}})
        result.thresholds[label] = float(thr)
        result.classes[label] = entry
    result.ece = summary
    return result


def _do_no_harm(calib: cal.Calibration, summary: dict, labels: Sequence[str]) -> cal.Calibration:
    """Identity for every class whose held-out (cross-fitted) ECE the fit did not lower: with
    a few dozen positives a fit's noise can exceed a small miscalibration (the bundled model on
    the NIH sample, docs/decisions.md), and a correction must not make a class worse."""
    a, b, fitted = calib.a.copy(), calib.b.copy(), calib.fitted.copy()
    for c, label in enumerate(labels):
        entry = summary["classes"][label]
        if fitted[c] and not entry["ece_after"] < entry["ece_before"]:
            a[c], b[c], fitted[c] = 1.0, 0.0, False
            entry.update({"a": 1.0, "b": 0.0, "fitted": False,
                          "not_applied": "the held-out ECE did not improve"})
    applied = [e for e in summary["classes"].values() if e["fitted"]]
    summary["applied_to"] = [lb for lb in labels if summary["classes"][lb]["fitted"]]
    summary["mean_ece_after_applied"] = (
        round(float(np.mean([e["ece_after"] for e in applied])), 4) if applied else None)
    summary["mean_ece_before_applied"] = (
        round(float(np.mean([e["ece_before"] for e in applied])), 4) if applied else None)
    return cal.Calibration(a, b, fitted)


def calibration_summary(y: np.ndarray, probs: np.ndarray, patients: Sequence[str],
                        labels: Sequence[str], calib: cal.Calibration, classes: Sequence[int],
                        folds: int, seed: int) -> dict:
    """The card's ``calibration`` entry: parameters, and the ECE before and after on held-out
    folds of patients (cross-fitted)."""
    after = cal.cross_fitted(y, probs, patients, classes, folds, seed)
    per_class, before_all, after_all = {}, [], []
    for c, label in enumerate(labels):
        entry = {"a": round(float(calib.a[c]), 6), "b": round(float(calib.b[c]), 6),
                 "fitted": bool(calib.fitted[c])}
        if calib.fitted[c]:
            e0, e1 = cal.ece(y[:, c], probs[:, c]), cal.ece(y[:, c], after[:, c])
            entry.update({"ece_before": round(e0, 4), "ece_after": round(e1, 4)})
            before_all.append(e0)
            after_all.append(e1)
        per_class[label] = entry
    return {"method": "Platt scaling on the logit: p' = sigmoid(a * logit(p) + b), per class, "
                      "in the graph (applied to every crop before test-time augmentation merges "
                      "them)",
            "ece": f"expected calibration error, {cal.ECE_BINS} equal-width bins",
            "ece_measured_on": f"{folds}-fold cross-fitting by patient: each image calibrated "
                               "by parameters fitted without its patient",
            "mean_ece_before": round(float(np.mean(before_all)), 4) if before_all else None,
            "mean_ece_after": round(float(np.mean(after_all)), 4) if after_all else None,
            "classes": per_class}
