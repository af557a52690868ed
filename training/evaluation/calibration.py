"""Calibration: do the probabilities mean what they say? Numpy + scikit-learn.

- Expected calibration error (ECE, Guo et al. 2017 "On calibration of modern neural networks",
  ICML) per class, over :data:`ECE_BINS` equal-width probability bins:
  ``ECE = sum_b (n_b / N) |mean(y in b) - mean(p in b)|``. Equal-width, not equal-count, so a
  number means the same thing for every model and data set; 10 bins because a class of a local
  sample has a few hundred images, and with 15 most bins above 0.5 would hold one or two.
- Platt scaling on the logit (Platt 1999; Guo et al.'s temperature scaling is the case
  ``b = 0``): ``p' = sigmoid(a * logit(p) + b)`` per class, fitted by logistic regression of
  the truth on ``logit(p)``. Monotone when ``a > 0``, so an image's rank within its class, the
  AUROC and the sensitivity at any corresponding threshold are unchanged; a fit with ``a <= 0``
  (a class whose scores do not rank its positives) is refused, and the class is left as it was.
- Cross-fitted ECE: fit on k-1 folds of *patients*, measure on the held-out fold, never on the
  images the fit saw (an in-sample ECE after fitting is optimistic).

:func:`apply_platt` is the numpy reference the graph surgery (``training.package.
calibration_graph``) must match: the same clip of ``p``, the same float32 arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chexnet.training.data.uncertain import known

ECE_BINS = 10
#: Probabilities are clipped to [EPS, 1 - EPS] before the logit (float32: 1 - 1e-7 is exact
#: enough, and a model's 0 or 1 must not become an infinite logit).
EPS = 1e-7
DEFAULT_FOLDS = 5


def reliability_bins(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin: image count, mean predicted probability and observed frequency of
    positives (NaN for empty bins). ``p == 1`` falls in the last bin."""
    keep = known(y)  # uncertain (-1) truth is left out
    p = np.asarray(p, dtype=np.float64)[keep]
    y = np.asarray(y)[keep].astype(np.float64)
    which = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(which, p, minlength=n_bins) / count
        freq = np.bincount(which, y, minlength=n_bins) / count
    return count, mean_p, freq


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> float | None:
    """Expected calibration error of one class (``None`` without images)."""
    count, mean_p, freq = reliability_bins(y, p, n_bins)
    if count.sum() == 0:
        return None
    used = count > 0
    return float(np.sum(count[used] * np.abs(freq[used] - mean_p[used])) / count.sum())


def logit32(p: np.ndarray) -> np.ndarray:
    """``log(p) - log(1 - p)`` of the clipped probabilities, in float32 (as the graph does)."""
    q = np.clip(np.asarray(p, dtype=np.float32), np.float32(EPS), np.float32(1 - EPS))
    one = np.float32(1)
    return (np.log(q) - np.log(one - q)).astype(np.float32)


def apply_platt(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``sigmoid(a * logit(p) + b)`` column by column, float32: the numpy reference of the
    calibrated graph."""
    z = logit32(p) * np.asarray(a, np.float32) + np.asarray(b, np.float32)
    return (np.float32(1) / (np.float32(1) + np.exp(-z))).astype(np.float32)


def fit_platt(y: np.ndarray, p: np.ndarray) -> tuple[float, float] | None:
    """(a, b) of one class, or None when it cannot be fitted (one class only, or ``a <= 0``)."""
    from sklearn.linear_model import LogisticRegression

    keep = known(y)  # uncertain (-1) truth is left out
    y, p = np.asarray(y)[keep].astype(int), np.asarray(p)[keep]
    if len(y) == 0 or y.min() == y.max():
        return None
    z = logit32(p).astype(np.float64)[:, None]
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(z, y)  # (almost) unregularised
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    return (a, b) if a > 0 else None


@dataclass(frozen=True)
class Calibration:
    """Per-class Platt parameters (identity, a = 1 and b = 0, where not fitted)."""

    a: np.ndarray
    b: np.ndarray
    fitted: np.ndarray  # bool per class

    def apply(self, probs: np.ndarray) -> np.ndarray:
        return apply_platt(probs, self.a, self.b)


def fit_calibration(y: np.ndarray, probs: np.ndarray, classes: Sequence[int]) -> Calibration:
    """Platt parameters for the columns ``classes`` (the others, and failed fits: identity)."""
    n = probs.shape[1]
    a, b, fitted = np.ones(n), np.zeros(n), np.zeros(n, dtype=bool)
    for c in classes:
        ab = fit_platt(y[:, c], probs[:, c])
        if ab is not None:
            (a[c], b[c]), fitted[c] = ab, True
    return Calibration(a, b, fitted)


def patient_folds(patients: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """A fold number 0..k-1 per image; every image of a patient in the same fold (patients
    shuffled with a seeded generator, then dealt round-robin)."""
    uniq, codes = np.unique(np.asarray(patients, dtype=object).astype(str), return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of_patient = np.empty(len(uniq), dtype=np.int64)
    fold_of_patient[order] = np.arange(len(uniq)) % k
    return fold_of_patient[codes.ravel()]


def cross_fitted(y: np.ndarray, probs: np.ndarray, patients: Sequence[str],
                 classes: Sequence[int], k: int = DEFAULT_FOLDS, seed: int = 0) -> np.ndarray:
    """Every image's probabilities calibrated by parameters fitted on the other ``k - 1``
    folds of patients (float64 [N, C]); columns not in ``classes`` as they were."""
    folds = patient_folds(patients, k, seed)
    out = np.asarray(probs, dtype=np.float64).copy()
    for f in range(k):
        held = folds == f
        if held.any() and (~held).any():
            cal = fit_calibration(y[~held], probs[~held], classes)
            out[held] = cal.apply(probs[held])
    return out


def ece_per_class(y: np.ndarray, probs: np.ndarray, n_bins: int = ECE_BINS) -> list[float | None]:
    return [ece(y[:, c], probs[:, c], n_bins) for c in range(probs.shape[1])]
