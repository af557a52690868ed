"""Step 1 of mining labels: clusters -> the paper's Table I, the label map to edit, and the
files step 2 reads back.

:func:`mine_clusters` cuts the reports into assertion-aware clauses
(:mod:`.assertion_clauses`: negation lists whole, anonymisation tokens masked) and clusters them
per assertion group (:mod:`.group_cluster`); :func:`write_clusters` writes into the output folder:

- ``clusters.csv``: one row per cluster, largest first (by images covered): medoid clause, the
  most frequent clause, size (clause occurrences), distinct clauses, images covered and their
  share, images where it is the only cluster ("single", as in Table I), the cumulative share of
  images the clusters so far cover, the member farthest from the medoid and its distance, the
  share of occurrences farther than MIXED_DISTANCE (a mixed cluster shows there), examples
  (most frequent distinct clauses);
- ``label_map.csv``: cluster, images, medoid, most frequent clause, assertion group, ``label``
  (pre-filled with a suggestion: for ``finding`` clusters the vocabulary's finding
  (:mod:`.findings`) that more than half of the occurrences name as present; ``normal`` for
  ``negated`` and ``normal`` clusters; none for ``uncertain`` ones (the user decides); for
  ``other`` clusters the paper's Table I terms of :mod:`.vocab` by edit distance) and
  ``ignore`` (0/1) -- the file the user edits;
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
from chexnet.training.reports.assertion_clauses import (
    clause_group,
    mining_clauses,
    present_labels,
)
from chexnet.training.reports.clauses import UniqueClauses, dedup_clauses
from chexnet.training.reports.cluster import (
    DEFAULT_K_RANGE,
    DEFAULT_MAX_UNIQUE,
    DEFAULT_SELECT_UNIQUE,
    Clustering,
    distance_matrix,
)
from chexnet.training.reports.findings import NORMAL, Vocabulary, builtin_vocabulary
from chexnet.training.reports.group_cluster import cluster_by_group
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
    group: str = ""  # assertion group (finding, uncertain, negated, normal, other)


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
                  select_unique: int = DEFAULT_SELECT_UNIQUE,
                  vocab: Vocabulary | None = None, search: str = "warm") -> Mining:
    """Split and deduplicate the reports' clauses, cluster them per assertion group (k given,
    or chosen in ``k_range`` by silhouette) and tabulate the clusters as Table I."""
    vocab = vocab or builtin_vocabulary()
    clauses = dedup_clauses(reports.texts, mining_clauses)
    groups = [clause_group(t, vocab) for t in clauses.texts]
    try:
        raw = cluster_by_group(clauses.texts, clauses.counts, groups, k, k_range, max_unique,
                               seed, select_unique, search)
    except ValueError as err:
        raise ReportFileError(reports.source, str(err),
                              "give more reports, or a smaller --k / --k-range") from None
    clustering = order_by_images(raw, clauses)
    return Mining(reports, clauses, clustering,
                  tuple(cluster_table(clauses, clustering, groups, vocab)))


def order_by_images(c: Clustering, clauses: UniqueClauses) -> Clustering:
    """The same clustering with cluster ids renumbered: 0 covers the most images."""
    images = [set() for _ in range(c.k)]
    for i, lab in enumerate(c.labels):
        images[lab].update(clauses.images[i])
    order = sorted(range(c.k), key=lambda j: (-len(images[j]), clauses.texts[c.medoids[j]]))
    new_id = np.empty(c.k, dtype=np.int64)
    new_id[order] = np.arange(c.k)
    return Clustering(new_id[c.labels], c.medoids[order], c.k, c.clustered, c.silhouettes,
                      c.silhouette, c.timings, c.groups)


def _suggest(texts: list[str], counts: list[int], group: str = "other",
             vocab: Vocabulary | None = None) -> str:
    """The label most occurrences of a cluster's most frequent clauses point to (more than half
    of them), else "" (rules: module doc)."""
    if group in ("negated", "normal"):
        return NORMAL
    if group == "uncertain":
        return ""
    votes: Counter[str] = Counter()
    for text, n in zip(texts[:SUGGEST_CLAUSES], counts[:SUGGEST_CLAUSES], strict=False):
        if group == "finding" and vocab is not None:
            for label in present_labels(text, vocab):
                votes[label] += n
        else:
            votes[suggest_label([text])] += n
    label, n = votes.most_common(1)[0]
    return label if label and n > sum(counts[:SUGGEST_CLAUSES]) / 2 else ""


def cluster_table(clauses: UniqueClauses, c: Clustering, groups: list[str] | None = None,
                  vocab: Vocabulary | None = None) -> list[ClusterRow]:
    """Table I's rows, one per cluster in cluster order (``groups``: each clause's assertion
    group, which every member of a cluster shares)."""
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
            suggestion=_suggest(texts, [clauses.counts[i] for i in ms],
                                groups[ms[0]] if groups else "other", vocab),
            group=groups[ms[0]] if groups else "",
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
                    "max_distance", "farthest_clause", "far_share", "assertion", "examples"])
        for r in m.rows:
            w.writerow([r.cluster, r.medoid, r.most_common, r.size, r.distinct, r.images,
                        f"{r.share:.4f}", r.single, f"{r.single / max(r.images, 1):.4f}",
                        f"{r.cumulative_share:.4f}", f"{r.max_distance:.3f}", r.farthest,
                        f"{r.far_share:.4f}", r.group, " | ".join(r.examples)])
    with open(paths["label_map.csv"], "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["cluster", "images", "medoid", "most_common", "assertion", "label",
                    "ignore"])
        for r in m.rows:
            w.writerow([r.cluster, r.images, r.medoid, r.most_common, r.group, r.suggestion,
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
        "clauses": "assertion-aware (negation lists whole, anonymisation masked), clustered "
                   "per assertion group", "groups": c.groups,
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    return paths


