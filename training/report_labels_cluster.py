"""Unique clauses -> k-medoids clusters by normalised edit distance (step two of mining labels).

The paper clusters clauses with k-medoids on their edit distance. Here:

- distance = rapidfuzz's normalised Levenshtein distance (edits / length of the longer clause,
  in [0, 1]) so that a two-character slip in a long clause counts less than in a short one;
  computed by ``rapidfuzz.process.cdist`` (C++, all cores) as float32;
- clustering = FasterPAM from the ``kmedoids`` package on that matrix;
- k = given, or the k in a range with the highest mean silhouette (``kmedoids.silhouette``,
  the exact Rousseeuw silhouette on the same matrix).

Memory: the matrix is n^2 float32 (10,000 unique clauses -> 400 MB). Above ``max_unique``
clauses, only the ``max_unique`` most frequent unique clauses are clustered (they hold most
occurrences; rare ones are mostly typos of frequent ones) and every other clause joins the
cluster of its nearest medoid (an n x k distance matrix, cheap).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import kmedoids
import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

log = logging.getLogger(__name__)

DEFAULT_MAX_UNIQUE = 10_000
DEFAULT_K_RANGE = (5, 40)


def distance_matrix(a: Sequence[str], b: Sequence[str] | None = None) -> np.ndarray:
    """Normalised Levenshtein distances, float32 [len(a), len(b)] (b defaults to a)."""
    return cdist(a, a if b is None else b, scorer=Levenshtein.normalized_distance,
                 dtype=np.float32, workers=-1)


def nearest_medoid(clauses: Sequence[str], medoids: Sequence[str]) -> np.ndarray:
    """Index of the closest medoid for each clause (ties -> the lower index)."""
    if not clauses:
        return np.zeros(0, dtype=np.int64)
    return np.argmin(distance_matrix(clauses, medoids), axis=1).astype(np.int64)


@dataclass(frozen=True)
class Clustering:
    """Cluster of every unique clause, and how it was reached.

    ``labels[i]`` is the cluster of unique clause ``i`` (0..k-1); ``medoids[c]`` the index of
    cluster c's medoid clause; ``clustered[i]`` is False for clauses assigned by nearest medoid
    because they fell outside the ``max_unique`` most frequent; ``silhouettes`` maps every k
    tried to its mean silhouette (empty when k was given).
    """

    labels: np.ndarray
    medoids: np.ndarray
    k: int
    clustered: np.ndarray
    silhouettes: dict[int, float] = field(default_factory=dict)
    silhouette: float | None = None


def choose_sample(counts: Sequence[int], max_unique: int) -> np.ndarray:
    """Indices of the clauses to cluster: all, or the ``max_unique`` most frequent (stable)."""
    n = len(counts)
    if n <= max_unique:
        return np.arange(n)
    order = np.argsort(-np.asarray(counts), kind="stable")[:max_unique]
    return np.sort(order)


def cluster_clauses(texts: Sequence[str], counts: Sequence[int], k: int | None = None,
                    k_range: tuple[int, int] = DEFAULT_K_RANGE,
                    max_unique: int = DEFAULT_MAX_UNIQUE, seed: int = 0) -> Clustering:
    """Cluster unique clauses; ``k`` fixed, or chosen in ``k_range`` (inclusive) by silhouette.

    Raises ValueError when there are fewer clauses than clusters asked for.
    """
    n = len(texts)
    if n < 2:
        raise ValueError(f"only {n} distinct clause(s): nothing to cluster")
    sample = choose_sample(counts, max_unique)
    sub = [texts[i] for i in sample]
    if len(sample) < n:
        log.info("clustering the %d most frequent of %d unique clauses; the rest join their "
                 "nearest medoid", len(sample), n)
    dist = distance_matrix(sub)
    silhouettes: dict[int, float] = {}
    if k is not None:
        if not 1 <= k < len(sub):
            raise ValueError(f"k={k} needs at least {k + 1} distinct clauses, there are "
                             f"{len(sub)}")
        result = kmedoids.fasterpam(dist, k, init="build", random_state=seed, n_cpu=-1)
        best_k, best_sil = k, _silhouette(dist, result.labels, k)
    else:
        lo, hi = max(2, k_range[0]), min(k_range[1], len(sub) - 1)
        if lo > hi:
            raise ValueError(f"k range {k_range[0]}:{k_range[1]} is empty for {len(sub)} "
                             "distinct clauses")
        result, best_k, best_sil = None, lo, -2.0
        for kk in range(lo, hi + 1):
            r = kmedoids.fasterpam(dist, kk, init="build", random_state=seed, n_cpu=-1)
            s = _silhouette(dist, r.labels, kk)
            silhouettes[kk] = s
            if s > best_sil:
                result, best_k, best_sil = r, kk, s
    labels_sub = np.asarray(result.labels, dtype=np.int64)
    medoids = sample[np.asarray(result.medoids, dtype=np.int64)]
    labels = np.empty(n, dtype=np.int64)
    labels[sample] = labels_sub
    clustered = np.zeros(n, dtype=bool)
    clustered[sample] = True
    rest = np.flatnonzero(~clustered)
    if rest.size:
        labels[rest] = nearest_medoid([texts[i] for i in rest], [texts[m] for m in medoids])
    return Clustering(labels, medoids, best_k, clustered, silhouettes, best_sil)


def _silhouette(dist: np.ndarray, labels: np.ndarray, k: int) -> float:
    if k < 2:
        return 0.0
    value = kmedoids.silhouette(dist, np.asarray(labels, dtype=np.uint64), n_cpu=-1)
    return float(value[0] if isinstance(value, tuple) else value)
