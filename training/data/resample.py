"""Class rebalancing by resampling the training split, as the hospital CAD paper did.

The paper (single-disease task) boosted small classes "so each class has a minimal of 380
samples" and down-sampled the normal class (to 21.9% of the training set). Here that is a
sampler over the *training* rows only (validation and test are never resampled): every epoch it
draws

- each class with fewer than ``min_per_class`` images up to ``min_per_class`` draws: every image
  ``min_per_class // n`` times, plus ``min_per_class % n`` distinct images drawn at random, so the
  images of a small class are used as evenly as possible (not i.i.d. with replacement);
- the normal class down to ``max_normal`` images, or to ``normal_fraction`` of the epoch,
  drawn without replacement (a fresh subset each epoch, so all normal images are used across
  epochs);
- every other class once.

An image's class is its label (single-label) or, for multi-label data, its rarest positive label
in the training split; images with no positive label form the normal group unless the table has
a ``normal`` column. Draws depend only on (seed, epoch): a resumed run draws what an
uninterrupted one would. torch's ``WeightedRandomSampler`` draws i.i.d. by weight, which gives
neither exact per-class counts nor without-replacement normals, hence this small sampler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from torch.utils.data import Sampler

from chexnet.training.data.labels import normal_column

NO_LABEL_GROUP = "(no label)"


@dataclass(frozen=True)
class ResamplePlan:
    """How many draws each group gets per epoch."""

    groups: tuple[str, ...]
    available: tuple[int, ...]  # training images per group
    drawn: tuple[int, ...]  # draws per group per epoch
    normal: str | None

    def summary(self) -> dict:
        return {"per_class": {g: {"images": a, "drawn_per_epoch": d}
                              for g, a, d in zip(self.groups, self.available, self.drawn,
                                                 strict=True)},
                "normal_class": self.normal, "epoch_size": int(sum(self.drawn))}


def resample_groups(y: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each row's group index and the group names (labels, plus :data:`NO_LABEL_GROUP` when
    some row has no positive label). A row's group is its rarest positive label."""
    y = np.asarray(y).astype(bool)
    counts = y.sum(axis=0)
    # rarest positive label: among positives, the smallest count (ties: label order)
    key = np.where(y, counts[None, :], np.iinfo(np.int64).max)
    group = np.argmin(key, axis=1)
    names = tuple(labels)
    none = ~y.any(axis=1)
    if none.any():
        group = np.where(none, len(names), group)
        names = (*names, NO_LABEL_GROUP)
    return group.astype(np.int64), names


def plan(y: np.ndarray, labels: tuple[str, ...], min_per_class: int | None = None,
         max_normal: int | None = None, normal_fraction: float | None = None) -> tuple[
             ResamplePlan, np.ndarray]:
    """The per-epoch draw counts and each row's group."""
    if max_normal is not None and normal_fraction is not None:
        raise ValueError("give --max-normal or --normal-fraction, not both")
    if normal_fraction is not None and not 0 < normal_fraction < 1:
        raise ValueError(f"--normal-fraction must be between 0 and 1, not {normal_fraction}")
    group, names = resample_groups(y, labels)
    available = np.bincount(group, minlength=len(names))
    normal_idx = normal_column(tuple(labels))
    if normal_idx is None and NO_LABEL_GROUP in names:
        normal_idx = names.index(NO_LABEL_GROUP)
    if (max_normal is not None or normal_fraction is not None) and normal_idx is None:
        raise ValueError("--max-normal/--normal-fraction: the training data has no normal class "
                         "(no 'normal' column and no image without a label)")
    drawn = available.copy()
    if min_per_class:
        drawn = np.where((available > 0) & (available < min_per_class), min_per_class, drawn)
    if normal_idx is not None:
        if max_normal is not None:
            drawn[normal_idx] = min(available[normal_idx], max_normal)
        elif normal_fraction is not None:
            others = int(drawn.sum() - drawn[normal_idx])
            want = round(normal_fraction / (1 - normal_fraction) * others)
            drawn[normal_idx] = min(available[normal_idx], max(1, want))
    result = ResamplePlan(names, tuple(int(a) for a in available), tuple(int(d) for d in drawn),
                          names[normal_idx] if normal_idx is not None else None)
    return result, group


class ResamplingSampler(Sampler[int]):
    """Per-epoch indices into the training rows following a :class:`ResamplePlan`; call
    :meth:`set_epoch` before each epoch (the trainer does)."""

    def __init__(self, y: np.ndarray, labels: tuple[str, ...], *, seed: int = 0,
                 min_per_class: int | None = None, max_normal: int | None = None,
                 normal_fraction: float | None = None) -> None:
        self.plan, self.group = plan(y, labels, min_per_class, max_normal, normal_fraction)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return int(sum(self.plan.drawn))

    def indices(self, epoch: int) -> np.ndarray:
        """The epoch's indices, shuffled; a function of (seed, epoch) only."""
        rng = np.random.default_rng([self.seed, epoch])
        parts = []
        for g, want in enumerate(self.plan.drawn):
            rows = np.flatnonzero(self.group == g)
            if want == 0 or len(rows) == 0:
                continue
            whole, rest = divmod(want, len(rows))
            parts.append(np.tile(rows, whole))
            parts.append(rng.choice(rows, size=rest, replace=False))
        out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return rng.permutation(out)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices(self.epoch).tolist())
