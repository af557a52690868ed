"""Unique clauses -> k-medoids clusters by normalised edit distance (step two of mining labels).

The paper clusters clauses with k-medoids on their edit distance. Here:

- distance = rapidfuzz's normalised Levenshtein distance (edits / length of the longer clause,
  in [0, 1]) so that a two-character slip in a long clause counts less than in a short one;
  computed by ``rapidfuzz.process.cdist`` (C++, all cores) as float32;
- clustering = FasterPAM from the ``kmedoids`` package on that matrix;
- k = given, or the k in a range with the highest mean silhouette (``kmedoids.silhouette``,
  the exact Rousseeuw silhouette on the same matrix). The search is warm-started
  (``search="warm"``, the default): BUILD initialises the lowest k only, and each next k starts
  FasterPAM from the previous k's medoids plus the clause farthest from its medoid. BUILD is
  O(k n^2) and dominated the old search (every k from BUILD, ``search="full"``): on 3,000
  clauses, k = 5..40 took 199 s cold and 17 s warm, with the same silhouettes to +-0.006
  (issue #18). Every k is still tried: the silhouette curve of clause clusters has several
  peaks, so a coarse-to-fine grid misses the best one. With more than ``select_unique``
  clauses, the k search runs on the ``select_unique`` most frequent of them (a sub-matrix, no
  new distances), and FasterPAM then runs once at the chosen k on all clustered clauses,
  started from the search's medoids.

Memory: the matrix is n^2 float32 (10,000 unique clauses -> 400 MB). Above ``max_unique``
clauses, only the ``max_unique`` most frequent unique clauses are clustered (they hold most
occurrences; rare ones are mostly typos of frequent ones) and every other clause joins the
cluster of its nearest medoid (an n x k distance matrix, cheap).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import kmedoids
import numpy as np
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

log = logging.getLogger(__name__)

DEFAULT_MAX_UNIQUE = 10_000
DEFAULT_K_RANGE = (5, 40)
DEFAULT_SELECT_UNIQUE = 3_000


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
    tried to its mean silhouette (empty when k was given; on the ``select_unique`` most frequent
    clauses when there were more); ``silhouette`` is the final clustering's.
    """

    labels: np.ndarray
    medoids: np.ndarray
    k: int
    clustered: np.ndarray
    silhouettes: dict[int, float] = field(default_factory=dict)
    silhouette: float | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    groups: dict[str, dict] = field(default_factory=dict)  # per assertion group: n, k, silhouette


def choose_sample(counts: Sequence[int], max_unique: int) -> np.ndarray:
    """Indices of the clauses to cluster: all, or the ``max_unique`` most frequent (stable)."""
    n = len(counts)
    if n <= max_unique:
        return np.arange(n)
    order = np.argsort(-np.asarray(counts), kind="stable")[:max_unique]
    return np.sort(order)


def cluster_clauses(texts: Sequence[str], counts: Sequence[int], k: int | None = None,
                    k_range: tuple[int, int] = DEFAULT_K_RANGE,
                    max_unique: int = DEFAULT_MAX_UNIQUE, seed: int = 0,
                    select_unique: int = DEFAULT_SELECT_UNIQUE, search: str = "warm"
                    ) -> Clustering:
    """Cluster unique clauses; ``k`` fixed, or chosen in ``k_range`` (inclusive) by silhouette.

    Raises ValueError when there are fewer clauses than clusters asked for.
    """
    n = len(texts)
    if n < 2:
        raise ValueError(f"only {n} distinct clause(s): nothing to cluster")
    clock = _Stopwatch()
    sample = choose_sample(counts, max_unique)
    sub = [texts[i] for i in sample]
    if len(sample) < n:
        log.info("clustering the %d most frequent of %d unique clauses; the rest join their "
                 "nearest medoid", len(sample), n)
    dist = distance_matrix(sub)
    clock.lap("distance matrix")
    silhouettes: dict[int, float] = {}
    if k is None:
        lo, hi = max(2, k_range[0]), min(k_range[1], len(sub) - 1)
        search_matrix = dist
        if len(sub) > select_unique:
            top = choose_sample([counts[i] for i in sample], select_unique)
            search_matrix = dist[np.ix_(top, top)]
            hi = min(hi, len(top) - 1)
            log.info("choosing k on the %d most frequent clauses", len(top))
        if lo > hi:
            raise ValueError(f"k range {k_range[0]}:{k_range[1]} is empty for {len(sub)} "
                             "distinct clauses")

        runs = search_k(search_matrix, lo, hi, seed, search, clock)
        silhouettes = {kk: v for kk, (v, _) in runs.items()}
        k = max(silhouettes, key=lambda kk: (silhouettes[kk], -kk))
        start = runs[k][1] if search_matrix is dist else top[runs[k][1]]
    elif not 1 <= k < len(sub):
        raise ValueError(f"k={k} needs at least {k + 1} distinct clauses, there are {len(sub)}")
    else:
        start = None
    # One FasterPAM at the chosen k on every clustered clause, from the search's medoids
    # (BUILD when k was given): the same result as the search's when it ran on all of them.
    if start is None:
        result = kmedoids.fasterpam(dist, k, init="build", random_state=seed, n_cpu=-1)
    else:
        start = np.asarray(start, dtype=np.int64)
        result = kmedoids.fasterpam(dist, start, n_cpu=1)  # one thread: see search_k
    clock.lap("FasterPAM at k")
    sil = _silhouette(dist, result.labels, k)
    clock.lap("silhouette at k")
    medoids = sample[np.asarray(result.medoids, dtype=np.int64)]
    labels = np.empty(n, dtype=np.int64)
    labels[sample] = np.asarray(result.labels, dtype=np.int64)
    clustered = np.zeros(n, dtype=bool)
    clustered[sample] = True
    rest = np.flatnonzero(~clustered)
    if rest.size:
        labels[rest] = nearest_medoid([texts[i] for i in rest], [texts[m] for m in medoids])
    clock.lap("nearest medoid for the rest")
    return Clustering(labels, medoids, k, clustered, silhouettes, sil, clock.laps)


def search_k(dist: np.ndarray, lo: int, hi: int, seed: int = 0, search: str = "warm",
             clock: _Stopwatch | None = None) -> dict[int, tuple[float, np.ndarray]]:
    """{k: (mean silhouette, medoids)} for every k in lo..hi: warm-started (module doc) or, with
    ``search="full"``, each k from BUILD (the old way, kept for the benchmark)."""
    if search not in ("warm", "full"):
        raise ValueError(f"search {search!r}: choose warm or full")
    clock = clock or _Stopwatch()
    out: dict[int, tuple[float, np.ndarray]] = {}
    previous = None
    for kk in range(lo, hi + 1):
        if previous is None or search == "full":
            r = kmedoids.fasterpam(dist, kk, init="build", random_state=seed, n_cpu=-1)
        else:
            medoids, labels = previous
            far = int(np.argmax(dist[np.arange(len(dist)), medoids[labels]]))
            # one thread: from given medoids kmedoids ignores the seed, and its parallel
            # FasterPAM then differs from run to run
            r = kmedoids.fasterpam(dist, np.append(medoids, far), n_cpu=1)
        clock.lap("k search: FasterPAM")
        medoids = np.asarray(r.medoids, dtype=np.int64)
        labels = np.asarray(r.labels, dtype=np.int64)
        out[kk] = (_silhouette(dist, labels, kk), medoids)
        previous = (medoids, labels)
        clock.lap("k search: silhouette")
    return out


class _Stopwatch:
    """Seconds per named stage, summed over repeats (the benchmark prints them)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._t
        self._t = now


def _silhouette(dist: np.ndarray, labels: np.ndarray, k: int) -> float:
    if k < 2:
        return 0.0
    value = kmedoids.silhouette(dist, np.asarray(labels, dtype=np.uint64), n_cpu=-1)
    return float(value[0] if isinstance(value, tuple) else value)
