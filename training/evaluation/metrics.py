"""Evaluation metrics for multi-label chest X-ray classifiers: pure numpy + scikit-learn.

No torch and no file I/O, so the evaluation CLI, training and export share them.

- CheXNet (Rajpurkar et al. 2017): per-class AUROC, with 95% bootstrap CIs that resample
  *patients* (an image never leaves its patient), F1 at an operating point.
- The hospital CAD paper: top-3 sensitivity, per-image average precision.
- Normal vs abnormal: score = the highest finding probability, truth = any finding.

(CAM localisation, the pointing game: :mod:`.localisation`.)

Arrays are ``y`` [N, C] of 0/1 truth and ``probs`` [N, C] of scores, one row per image. A truth
of -1 (uncertain) is left out of that label's AUROC, operating point and threshold (a per-label
mask, :func:`~chexnet.training.data.uncertain.known`), and is no positive in the ranking metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from chexnet.inference.package.card import DEFAULT_THRESHOLD
from chexnet.training.data.uncertain import known

log = logging.getLogger(__name__)

THRESHOLD_RULES = ("max_f1", "youden")


def undefined_auroc_reason(y: np.ndarray) -> str | None:
    """Why the AUROC of a truth vector (-1 left out) is undefined, or ``None`` if defined."""
    y = np.asarray(y)[known(y)]
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0:
        return "no positive images"
    if n_pos == len(y):
        return "no negative images"
    return None


def auroc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC (ties count one half) over the known truth; ``None`` without both classes."""
    keep = known(y)
    y = np.asarray(y)[keep].astype(bool)
    if undefined_auroc_reason(y) is not None:
        return None
    return float(roc_auc_score(y, np.asarray(scores, dtype=np.float64)[keep]))


def roc_points(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) along the ROC curve (known truth only)."""
    keep = known(y)
    fpr, tpr, _ = roc_curve(np.asarray(y)[keep] == 1, np.asarray(scores, np.float64)[keep])
    return fpr, tpr


# --- patient-level bootstrap -------------------------------------------------------------------

def patient_codes(patients: Sequence[str]) -> tuple[np.ndarray, int]:
    """Each image's patient as an integer 0..P-1, and P."""
    _, codes = np.unique(np.asarray(patients, dtype=object).astype(str), return_inverse=True)
    codes = codes.ravel()
    return codes, int(codes.max()) + 1 if len(codes) else 0


def bootstrap_weights(patients: Sequence[str], n_resamples: int, seed: int | None = 0,
                      chunk: int = 200) -> Iterator[np.ndarray]:
    """Patient-level bootstrap as image weights, ``chunk`` resamples at a time.

    Each resample draws P patients with replacement from the P patients (a seeded
    :class:`numpy.random.Generator`) and takes *all* images of every drawn patient; an image's
    weight is how many times its patient was drawn. Yields float64 arrays [b, N].
    """
    codes, n_pat = patient_codes(patients)
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        draws = rng.integers(0, n_pat, size=(b, n_pat))
        flat = (np.arange(b)[:, None] * n_pat + draws).ravel()
        counts = np.bincount(flat, minlength=b * n_pat).reshape(b, n_pat)
        yield counts[:, codes].astype(np.float64)
        done += b


def _auroc_layout(y: np.ndarray, scores: np.ndarray):
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    return order, y[order] == 1, starts, known(y[order])


def weighted_auroc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray,
                   _layout=None) -> np.ndarray:
    """AUROC for each row of image ``weights`` [B, N] (integer multiplicities); NaN where a
    resample has no positive or no negative image. Ties between scores count one half, as in
    :func:`auroc`, which equals this with all weights 1."""
    order, ys, starts, keep = _layout or _auroc_layout(np.asarray(y), np.asarray(scores))
    w = np.where(keep, np.atleast_2d(weights)[:, order], 0)  # uncertain truth weighs nothing
    wp = np.where(ys, w, 0.0)
    pos = np.add.reduceat(wp, starts, axis=1)  # weight per tied-score group
    neg = np.add.reduceat(w - wp, starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


@dataclass(frozen=True)
class BootstrapAUROC:
    """Per-column bootstrap results: ``samples`` [B, C] (NaN where undefined)."""

    samples: np.ndarray
    level: float

    def ci(self, column: int) -> tuple[float, float] | None:
        col = self.samples[:, column]
        col = col[np.isfinite(col)]
        if len(col) == 0:
            return None
        tail = 50.0 * (1.0 - self.level)
        lo, hi = np.percentile(col, [tail, 100.0 - tail])
        return float(lo), float(hi)

    def n_undefined(self, column: int) -> int:
        return int(np.count_nonzero(~np.isfinite(self.samples[:, column])))

    def mean_ci(self, columns: Sequence[int]) -> tuple[float, float] | None:
        """CI of the mean AUROC over ``columns`` (resamples where any is undefined skipped)."""
        if not len(columns):
            return None
        means = self.samples[:, list(columns)].mean(axis=1)
        return BootstrapAUROC(means[:, None], self.level).ci(0)


def bootstrap_auroc(y: np.ndarray, probs: np.ndarray, patients: Sequence[str],
                    n_resamples: int = 1000, seed: int | None = 0,
                    level: float = 0.95) -> BootstrapAUROC:
    """Patient-level bootstrap of every column's AUROC (the same resamples for all columns, so
    a CI of the mean over columns is meaningful). Vectorised: O(B x N) per column."""
    y, probs = np.atleast_2d(y), np.atleast_2d(probs).astype(np.float64)
    layouts = [_auroc_layout(y[:, c], probs[:, c]) for c in range(y.shape[1])]
    parts = []
    for w in bootstrap_weights(patients, n_resamples, seed):
        parts.append(np.stack([weighted_auroc(y[:, c], probs[:, c], w, layouts[c])
                               for c in range(y.shape[1])], axis=1))
    samples = np.concatenate(parts) if parts else np.empty((0, y.shape[1]))
    return BootstrapAUROC(samples, level)


# --- operating points ---------------------------------------------------------------------------

def f1_from_counts(tp, fp, fn) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN), elementwise; NaN where there is nothing to count."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def binary_stats(y: np.ndarray, predicted: np.ndarray) -> dict:
    """Counts, sensitivity, specificity, PPV, F1 of decisions on known truth (None: undefined)."""
    keep = known(y)
    y, p = np.asarray(y)[keep].astype(bool), np.asarray(predicted)[keep].astype(bool)
    tp, fp = int(np.sum(y & p)), int(np.sum(~y & p))
    fn, tn = int(np.sum(y & ~p)), int(np.sum(~y & ~p))
    f1 = f1_from_counts(tp, fp, fn)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "sensitivity": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp),
            "ppv": _ratio(tp, tp + fp), "f1": None if np.isnan(f1) else float(f1)}


def weighted_f1(y: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """F1 for each row of bootstrap image ``weights`` [B, N]."""
    y, p = np.asarray(y).astype(np.float64), np.asarray(predicted).astype(np.float64)
    return f1_from_counts(weights @ (y * p), weights @ ((1 - y) * p), weights @ (y * (1 - p)))


def candidate_points(y: np.ndarray, s: np.ndarray):
    """Distinct scores high to low, with TP and FP counts when predicting ``s >= t``."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]  # last element of each tied group
    tp = np.cumsum(y_sorted)[last]
    fp = np.cumsum(~y_sorted)[last]
    return s_sorted[last], tp, fp


def threshold_fallback(y: np.ndarray, rule: str = "max_f1") -> str | None:
    """Why :func:`choose_thresholds` keeps 0.5 for a class with truth ``y`` under ``rule``
    ("no positives", "no negatives"), or None when the rule chooses its threshold."""
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0:
        return "no positives"
    return "no negatives" if rule == "youden" and n_pos == len(y) else None


def choose_thresholds(y_true: np.ndarray, probs: np.ndarray, rule: str = "max_f1",
                      labels: Sequence[str] | None = None) -> np.ndarray:
    """Per-class operating thresholds (a finding is called when ``prob >= threshold``).

    Rules, over the candidate thresholds = the distinct scores of the class:

    - ``max_f1``: the threshold with the highest F1 = 2TP / (2TP + FP + FN);
    - ``youden``: the threshold with the highest Youden index = sensitivity + specificity - 1.

    Ties go to the highest threshold (fewer positive calls). A class for which the rule is
    undefined (no positive images; for ``youden`` also no negative ones) gets 0.5 and is
    reported in a warning naming it.
    """
    if rule not in THRESHOLD_RULES:
        raise ValueError(f"rule must be one of {', '.join(THRESHOLD_RULES)}, not {rule!r}")
    y, probs = np.atleast_2d(np.asarray(y_true)), np.atleast_2d(probs)
    n_cls = y.shape[1]
    names = list(labels) if labels is not None else [str(c) for c in range(n_cls)]
    out = np.full(n_cls, DEFAULT_THRESHOLD, dtype=np.float64)
    fallback = []
    for c in range(n_cls):
        keep = known(y[:, c])
        yc, sc = y[keep, c].astype(bool), np.asarray(probs[keep, c], dtype=np.float64)
        n_pos, n_neg = int(yc.sum()), int((~yc).sum())
        why = threshold_fallback(yc, rule)
        if why is not None:
            fallback.append(f"{names[c]} ({why})")
            continue
        thr, tp, fp = candidate_points(yc, sc)
        score = (f1_from_counts(tp, fp, n_pos - tp) if rule == "max_f1"
                 else tp / n_pos - fp / n_neg)
        best = np.nanmax(score)  # ties (up to rounding) go to the highest threshold
        out[c] = thr[int(np.flatnonzero(score >= best - 1e-12)[0])]
    if fallback:
        log.warning("choose_thresholds(%s): no threshold can be chosen for %s; using %.1f",
                    rule, ", ".join(fallback), DEFAULT_THRESHOLD)
    return out


# --- the hospital CAD paper's ranking metrics ---------------------------------------------------

def label_ranks(probs: np.ndarray) -> np.ndarray:
    """1-based rank of each label within its image, highest probability first (ties: label
    order)."""
    probs = np.atleast_2d(probs)
    order = np.argsort(-probs, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, probs.shape[1] + 1)[None, :], axis=1)
    return ranks


def average_precision_from_ranks(ranks: Sequence[int]) -> float:
    """One image's AP from the ranks of its true labels: the mean over true labels of (true
    labels ranked at or above it) / (its rank). Ranks 1, 2, 4 give (1/1 + 2/2 + 3/4) / 3."""
    r = np.sort(np.asarray(ranks, dtype=np.float64))
    if len(r) == 0:
        raise ValueError("an image without true labels has no average precision")
    return float(np.mean(np.arange(1, len(r) + 1) / r))


def per_image_average_precision(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """AP of every image (labels ranked by probability); NaN for images with no true label,
    which the mean leaves out."""
    y, ranks = np.atleast_2d(y) == 1, label_ranks(probs)
    return np.array([average_precision_from_ranks(ranks[i, y[i]]) if y[i].any() else np.nan
                     for i in range(len(y))])


def top_k_sensitivity(y: np.ndarray, probs: np.ndarray, k: int = 3
                      ) -> tuple[np.ndarray, float | None]:
    """Per label: the fraction of its positive images where it is among the image's ``k``
    most probable labels (NaN without positives); overall: the same over all (image, true
    label) pairs (``None`` without any)."""
    y = np.atleast_2d(y) == 1
    in_top = label_ranks(probs) <= k
    n_pos = y.sum(axis=0)
    hits = (y & in_top).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(n_pos > 0, hits / np.maximum(n_pos, 1), np.nan)
    total = int(n_pos.sum())
    return per_class, (float(hits.sum() / total) if total else None)


def abnormal_truth_and_score(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normal vs abnormal: truth = any finding (else -1, uncertain, when one is uncertain),
    score = the highest finding probability."""
    y = np.atleast_2d(y)
    truth = np.where((y == 1).any(axis=1), 1, np.where((y < 0).any(axis=1), -1, 0))
    return truth.astype(np.int8), np.atleast_2d(probs).max(axis=1)
