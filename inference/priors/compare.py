"""Two predictions of one patient -> what changed, per finding.

"new": above the operating point now (``>=``, as :attr:`Finding.above_threshold`), not before;
"resolved": above before, not now. Deltas are plain differences of the two probabilities, so a
comparison equals subtracting two independent ``chexnet predict`` results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from chexnet.inference.package.card import DEFAULT_THRESHOLD, ModelCard, is_normal_label
from chexnet.inference.scoring.prediction import Prediction

NEW, RESOLVED = "new", "resolved"


class NotComparableError(ValueError):
    """The two predictions cannot be compared (one not analysed, or no finding in common)."""


@dataclass(frozen=True)
class FindingChange:
    label: str
    now: float
    before: float
    delta: float
    status: str  # NEW, RESOLVED or ""

    @property
    def arrow(self) -> str:
        return "↑" if self.delta > 0 else "↓" if self.delta < 0 else "="


@dataclass(frozen=True)
class Comparison:
    rows: tuple[FindingChange, ...]  # the current prediction's ranking order (now, descending)
    new: tuple[str, ...]
    resolved: tuple[str, ...]

    def delta(self, label: str) -> float | None:
        return next((r.delta for r in self.rows if r.label == label), None)

    def to_dict(self) -> dict:
        return {"findings": [{"label": r.label, "now": round(r.now, 6),
                              "before": round(r.before, 6), "delta": round(r.delta, 6),
                              "status": r.status} for r in self.rows],
                "new": list(self.new), "resolved": list(self.resolved)}


def card_thresholds(card: ModelCard) -> dict[str, float]:
    """A card's operating point for each of its labels (the default where it gives none)."""
    return {label: card.threshold(label) for label in card.labels}


def compare_predictions(current: Prediction, prior: Prediction,
                        thresholds: Mapping[str, float]) -> Comparison:
    """Per finding of ``current`` (ranked), its probability now and in ``prior`` and the change.
    Raises :class:`NotComparableError` when either is not analysed or they share no finding."""
    for which, pred in (("current", current), ("prior", prior)):
        if not pred.analysed or pred.probabilities is None:
            raise NotComparableError(f"the {which} image was not analysed: "
                                     f"{'; '.join(pred.reasons) or 'no scores'}")
    if tuple(prior.labels) == tuple(current.labels):
        before = np.asarray(prior.probabilities, dtype=np.float64)
    else:
        by_label = dict(zip(prior.labels, prior.probabilities, strict=True))
        before = np.array([by_label.get(lb, np.nan) for lb in current.labels], dtype=np.float64)
    return compare_arrays(tuple(current.labels), np.asarray(current.probabilities,
                                                            dtype=np.float64),
                          before, thresholds)


def compare_arrays(labels: tuple[str, ...], now: np.ndarray, before: np.ndarray,
                   thresholds: Mapping[str, float]) -> Comparison:
    """:func:`compare_predictions` on probability arrays in ``labels`` order (NaN in ``before``:
    a finding the prior's model lacks, left out). Ranked as :attr:`Prediction.ranked`: by
    ``now``, descending, stable; "normal" outputs are no finding."""
    ch = changes(labels, now[None, :], before[None, :], thresholds)
    if not ch.order[0]:
        raise NotComparableError("the two predictions share no finding (different models?)")
    now_l, before_l = now.tolist(), before.tolist()  # Python floats: 5x faster per element
    new, resolved = ch.new_mask[0].tolist(), ch.resolved_mask[0].tolist()
    rows = tuple(FindingChange(labels[i], now_l[i], before_l[i], now_l[i] - before_l[i],
                               NEW if new[i] else RESOLVED if resolved[i] else "")
                 for i in ch.order[0])
    return Comparison(rows, ch.new[0], ch.resolved[0])


@dataclass(frozen=True)
class Changes:
    """What :func:`compare_arrays` decides, for many pairs at once (a worklist of 10,000 rows:
    one numpy pass, no per-finding objects). Row ``k`` of each array is pair ``k``; ``order``:
    per pair, the compared findings' indices, ranked."""

    order: list[list[int]]
    delta: np.ndarray
    new_mask: np.ndarray
    resolved_mask: np.ndarray
    new: list[tuple[str, ...]]
    resolved: list[tuple[str, ...]]


def changes(labels: tuple[str, ...], now: np.ndarray, before: np.ndarray,
            thresholds: Mapping[str, float]) -> Changes:
    """The one rule, on [pairs, labels] arrays: new = ``now >= limit > before``, resolved =
    ``before >= limit > now``; "normal" outputs and NaN (a finding a model lacks) left out."""
    compared = np.array(_findings(labels))[None, :] & ~np.isnan(before)
    limits = np.array([float(thresholds.get(lb, DEFAULT_THRESHOLD)) for lb in labels])
    with np.errstate(invalid="ignore"):
        new = compared & (now >= limits) & (before < limits)
        resolved = compared & (before >= limits) & (now < limits)
    ranked = np.argsort(-now, axis=1, kind="stable").tolist()
    keep, new_l, res_l = compared.tolist(), new.tolist(), resolved.tolist()
    order = [[i for i in row if k[i]] for row, k in zip(ranked, keep, strict=True)]
    return Changes(order, now - before, new, resolved,
                   [tuple(labels[i] for i in o if n[i]) for o, n in zip(order, new_l, strict=True)],
                   [tuple(labels[i] for i in o if r[i]) for o, r in zip(order, res_l,
                                                                        strict=True)])


@lru_cache(maxsize=16)
def _findings(labels: tuple[str, ...]) -> tuple[bool, ...]:
    return tuple(not is_normal_label(lb) for lb in labels)
