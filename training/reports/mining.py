"""Step 1 of mining labels: clusters -> the paper's Table I, the label map to edit, and the
files step 2 reads back.

:func:`mine_clusters` clusters the reports' clauses; :func:`write_clusters` writes into the
output folder:

- ``clusters.csv``: one row per cluster, largest first (by images covered): medoid clause, the
  most frequent clause, size (clause occurrences), distinct clauses, images covered and their
  share, images where it is the only cluster ("single", as in Table I), the cumulative share of
  images the clusters so far cover, the member farthest from the medoid and its distance, the
  share of occurrences farther than MIXED_DISTANCE (a mixed cluster shows there), examples
  (most frequent distinct clauses);
- ``label_map.csv``: cluster, images, medoid, most frequent clause, ``label`` (pre-filled with a
  suggestion when more than half of the cluster's occurrences match one term of
  :mod:`.vocab`, else empty) and ``ignore`` (0/1) -- the file the user edits;
- ``clauses.csv``: every distinct clause with its count and cluster (what step 2 looks up);
- ``clustering.json``: k, silhouettes, medoids, the reports file's sha256.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chexnet.inference.package.hashing import sha256_file
from chexnet.training.reports.clauses import UniqueClauses, dedup_clauses
from chexnet.training.reports.cluster import (
    DEFAULT_K_RANGE,
    DEFAULT_MAX_UNIQUE,
    DEFAULT_SELECT_UNIQUE,
    Clustering,
    cluster_clauses,
    distance_matrix,
)
from chexnet.training.reports.report_files import ReportFileError, ReportTable
from chexnet.training.reports.vocab import suggest_label

N_EXAMPLES = 5
SUGGEST_CLAUSES = 50  # most frequent clauses of a cluster that vote for its suggested label
MIXED_DISTANCE = 0.6  # a member this far from its medoid is probably another finding
MIXED_SHARE = 0.05  # ... and a cluster with this share of such occurrences is worth a look


@dataclass(frozen=True)
class ClusterRow:
    """One line of Table I."""

    cluster: int
    medoid: str
    most_common: str
    size: int
    distinct: int
    images: int
    share: float
    single: int
    cumulative_share: float
    examples: tuple[str, ...]
    suggestion: str
    max_distance: float  # the farthest member from the medoid (normalised edit distance)
    farthest: str  # that member: a mixed cluster shows here
    far_share: float  # share of the cluster's occurrences farther than MIXED_DISTANCE


@dataclass(frozen=True)
class Mining:
    """Step 1's result. Cluster ids are renumbered so that 0 covers the most images."""

    reports: ReportTable
    clauses: UniqueClauses
    clustering: Clustering
    rows: tuple[ClusterRow, ...]

    def mixed_rows(self) -> list[ClusterRow]:
        """Clusters with a notable share of members far from their medoid: worth a look, and
        perhaps a larger k."""
        return [r for r in self.rows if r.far_share >= MIXED_SHARE]


def mine_clusters(reports: ReportTable, k: int | None = None,
                  k_range: tuple[int, int] = DEFAULT_K_RANGE,
                  max_unique: int = DEFAULT_MAX_UNIQUE, seed: int = 0,
                  select_unique: int = DEFAULT_SELECT_UNIQUE) -> Mining:
    """Split and deduplicate the reports' clauses, cluster them (k given, or chosen in
    ``k_range`` by silhouette) and tabulate the clusters as Table I."""
    clauses = dedup_clauses(reports.texts)
    try:
        raw = cluster_clauses(clauses.texts, clauses.counts, k, k_range, max_unique, seed,
                              select_unique)
    except ValueError as err:
        raise ReportFileError(reports.source, str(err),
                              "give more reports, or a smaller --k / --k-range") from None
    clustering = order_by_images(raw, clauses)
    return Mining(reports, clauses, clustering, tuple(cluster_table(clauses, clustering)))


def order_by_images(c: Clustering, clauses: UniqueClauses) -> Clustering:
    """The same clustering with cluster ids renumbered: 0 covers the most images."""
    images = [set() for _ in range(c.k)]
    for i, lab in enumerate(c.labels):
        images[lab].update(clauses.images[i])
    order = sorted(range(c.k), key=lambda j: (-len(images[j]), clauses.texts[c.medoids[j]]))
    new_id = np.empty(c.k, dtype=np.int64)
    new_id[order] = np.arange(c.k)
    return Clustering(new_id[c.labels], c.medoids[order], c.k, c.clustered, c.silhouettes,
                      c.silhouette, c.timings)


def _suggest(texts: list[str], counts: list[int]) -> str:
    """The label most occurrences of a cluster's most frequent clauses point to (more than half
    of them), else ""."""
    votes: Counter[str] = Counter()
    for text, n in zip(texts[:SUGGEST_CLAUSES], counts[:SUGGEST_CLAUSES], strict=False):
        votes[suggest_label([text])] += n
    label, n = votes.most_common(1)[0]
    return label if label and n > sum(counts[:SUGGEST_CLAUSES]) / 2 else ""


def cluster_table(clauses: UniqueClauses, c: Clustering) -> list[ClusterRow]:
    """Table I's rows, one per cluster in cluster order."""
    n_images = len(clauses.per_image)
    to_medoid = distance_matrix(clauses.texts, [clauses.texts[m] for m in c.medoids])
    own = to_medoid[np.arange(len(clauses)), c.labels]
    members: list[list[int]] = [[] for _ in range(c.k)]
    for i, lab in enumerate(c.labels):
        members[lab].append(i)
    image_clusters = [{int(c.labels[i]) for i in row} for row in clauses.per_image]
    covered: set[int] = set()
    rows = []
    for j in range(c.k):
        ms = sorted(members[j], key=lambda i: (-clauses.counts[i], clauses.texts[i]))
        imgs = sorted({r for i in ms for r in clauses.images[i]})
        covered.update(imgs)
        texts = [clauses.texts[i] for i in ms]
        far = max(ms, key=lambda i: own[i])
        size = sum(clauses.counts[i] for i in ms)
        rows.append(ClusterRow(
            cluster=j, medoid=clauses.texts[c.medoids[j]], most_common=texts[0],
            size=size, distinct=len(ms), images=len(imgs),
            share=len(imgs) / n_images,
            single=sum(1 for r in imgs if image_clusters[r] == {j}),
            cumulative_share=len(covered) / n_images, examples=tuple(texts[:N_EXAMPLES]),
            suggestion=_suggest(texts, [clauses.counts[i] for i in ms]),
            max_distance=float(own[far]), farthest=clauses.texts[far],
            far_share=sum(clauses.counts[i] for i in ms if own[i] > MIXED_DISTANCE) / size))
    return rows


def write_clusters(m: Mining, out: Path, min_images: int = 0) -> dict[str, Path]:
    """Write clusters.csv, label_map.csv, clauses.csv and clustering.json into ``out``.

    Clusters covering fewer than ``min_images`` images start with ``ignore`` = 1."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("clusters.csv", "label_map.csv", "clauses.csv",
                                           "clustering.json")}
    with open(paths["clusters.csv"], "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["cluster", "medoid", "most_common", "size", "distinct_clauses", "images",
                    "share_of_images", "single", "single_share", "cumulative_share",
                    "max_distance", "farthest_clause", "far_share", "examples"])
        for r in m.rows:
            w.writerow([r.cluster, r.medoid, r.most_common, r.size, r.distinct, r.images,
                        f"{r.share:.4f}", r.single, f"{r.single / max(r.images, 1):.4f}",
                        f"{r.cumulative_share:.4f}", f"{r.max_distance:.3f}", r.farthest,
                        f"{r.far_share:.4f}", " | ".join(r.examples)])
    with open(paths["label_map.csv"], "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["cluster", "images", "medoid", "most_common", "label", "ignore"])
        for r in m.rows:
            w.writerow([r.cluster, r.images, r.medoid, r.most_common, r.suggestion,
                        int(r.images < min_images)])
    with open(paths["clauses.csv"], "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["clause", "count", "images", "cluster", "clustered"])
        for i, text in enumerate(m.clauses.texts):
            w.writerow([text, m.clauses.counts[i], len(m.clauses.images[i]),
                        int(m.clustering.labels[i]), int(m.clustering.clustered[i])])
    c = m.clustering
    paths["clustering.json"].write_text(json.dumps({
        "reports": str(m.reports.source), "reports_sha256": sha256_file(m.reports.source),
        "text_column": m.reports.text_column, "encoding": m.reports.encoding,
        "images": len(m.reports), "clause_occurrences": m.clauses.n_occurrences,
        "distinct_clauses": len(m.clauses), "clustered_clauses": int(c.clustered.sum()),
        "k": c.k, "silhouette": c.silhouette, "seconds": c.timings,
        "silhouettes": {str(k): v for k, v in c.silhouettes.items()},
        "medoids": [m.clauses.texts[i] for i in c.medoids],
        "distance": "rapidfuzz Levenshtein.normalized_distance", "clustering": "FasterPAM",
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    return paths


