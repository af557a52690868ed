"""Clause clustering per assertion group (:mod:`.assertion_clauses`): k-medoids runs inside each
group, so a negated clause and a positive one never share a cluster.

k: given, it is shared out over the groups in proportion to the square root of their distinct
clauses (at least one cluster each), the ``negated`` and ``normal`` groups at a quarter weight;
else each group searches its share of ``k_range`` by silhouette (warm-started,
:func:`.cluster.search_k`). The square root keeps a large group from taking every cluster from
the small but decisive ``uncertain`` one; the quarter weight because every negated or normal
cluster is suggested the same label (``normal``), while negated lists come in many distinct
combinations that would otherwise take most clusters from the findings (measured on 16,000
generated English reports: 21 of 41 clusters went to negated lists, 10 to findings).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from chexnet.training.reports.assertion_clauses import GROUPS
from chexnet.training.reports.cluster import Clustering, cluster_clauses

LOW_WEIGHT = ("negated", "normal")  # all suggested `normal`: few clusters needed


def group_k(n: int, share: float, k: int | None, k_range: tuple[int, int]
            ) -> tuple[int | None, tuple[int, int]]:
    """(fixed k, or None with the k range to search) for a group of n distinct clauses."""
    if k is not None:
        return min(n - 1, max(1, round(k * share))), k_range
    lo = max(2, round(k_range[0] * share))
    hi = min(n - 1, max(lo, round(k_range[1] * share)))
    return (max(1, n - 1), k_range) if lo > hi else (None, (lo, hi))


def cluster_by_group(texts: Sequence[str], counts: Sequence[int], groups: Sequence[str],
                     k: int | None, k_range: tuple[int, int], max_unique: int, seed: int,
                     select_unique: int, search: str = "warm") -> Clustering:
    """One :class:`~.cluster.Clustering` over all clauses, clustered group by group."""
    n = len(texts)
    members = {g: [i for i in range(n) if groups[i] == g] for g in GROUPS}
    members = {g: m for g, m in members.items() if m}
    if n < 2:
        raise ValueError(f"only {n} distinct clause(s): nothing to cluster")
    weight = {g: math.sqrt(len(m)) * (0.25 if g in LOW_WEIGHT else 1.0)
              for g, m in members.items()}
    total = sum(weight.values())
    labels = np.zeros(n, dtype=np.int64)
    clustered = np.zeros(n, dtype=bool)
    medoids: list[int] = []
    timings: dict[str, float] = {}
    info: dict[str, dict] = {}
    for g, idx in members.items():
        if len(idx) == 1:
            labels[idx[0]], clustered[idx[0]] = len(medoids), True
            medoids.append(idx[0])
            info[g] = {"clauses": 1, "k": 1, "silhouette": None}
            continue
        k_g, range_g = group_k(len(idx), weight[g] / total, k, k_range)
        c = cluster_clauses([texts[i] for i in idx], [counts[i] for i in idx], k_g, range_g,
                            max_unique, seed, select_unique, search)
        labels[idx] = c.labels + len(medoids)
        clustered[idx] = c.clustered
        medoids.extend(idx[m] for m in c.medoids)
        for stage, t in c.timings.items():
            timings[stage] = timings.get(stage, 0.0) + t
        info[g] = {"clauses": len(idx), "k": c.k, "silhouette": c.silhouette,
                   "silhouettes": {str(kk): v for kk, v in c.silhouettes.items()}}
    scored = [(v["clauses"], v["silhouette"]) for v in info.values()
              if v["silhouette"] is not None]
    silhouette = (sum(w * s for w, s in scored) / sum(w for w, _ in scored)) if scored else 0.0
    return Clustering(labels, np.asarray(medoids, dtype=np.int64), len(medoids), clustered, {},
                      silhouette, timings, info)
