"""Clusters -> the paper's Table I, the user's label map, and labels.csv for chexnet-train.

Step 1 (:func:`mine_clusters`, :func:`write_clusters`) writes into the output folder:

- ``clusters.csv``: one row per cluster, largest first (by images covered): medoid clause, the
  most frequent clause, size (clause occurrences), distinct clauses, images covered and their
  share, images where it is the only cluster ("single", as in Table I), the cumulative share of
  images the clusters so far cover, the member farthest from the medoid and its distance, the
  share of occurrences farther than MIXED_DISTANCE (a mixed cluster shows there), examples
  (most frequent distinct clauses);
- ``label_map.csv``: cluster, images, medoid, most frequent clause, ``label`` (pre-filled with a
  suggestion when more than half of the cluster's occurrences match one term of
  :mod:`report_labels_vocab`, else empty) and ``ignore`` (0/1) -- the file the user edits;
- ``clauses.csv``: every distinct clause with its count and cluster (what step 2 looks up);
- ``clustering.json``: k, silhouettes, medoids, the reports file's sha256.

Step 2 (:func:`read_label_map`, :func:`apply_label_map`) turns reports into one 0/1 column per
label. Rules: several clusters may share a label (they merge); a cluster with ``ignore`` = 1 or
an empty label contributes nothing; a clause step 1 never saw joins its nearest medoid;
``normal`` is set only when the report maps to ``normal`` and to no finding (a finding wins);
an image whose clauses map to no label at all is left out of labels.csv and listed in
``unlabelled.csv`` with the reason -- it is unknown, not normal.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chexnet.inference.package.hashing import sha256_file
from chexnet.training.data.labels import PATIENT_COLUMN, SPLIT_COLUMN
from chexnet.training.reports.clauses import UniqueClauses, dedup_clauses, split_clauses
from chexnet.training.reports.cluster import (
    DEFAULT_K_RANGE,
    DEFAULT_MAX_UNIQUE,
    DEFAULT_SELECT_UNIQUE,
    Clustering,
    cluster_clauses,
    distance_matrix,
    nearest_medoid,
)
from chexnet.training.reports.report_files import ReportFileError, ReportTable, decode_file
from chexnet.training.reports.vocab import NORMAL_LABEL, suggest_label

PATH_COLUMN = "path"
N_EXAMPLES = 5
SUGGEST_CLAUSES = 50  # most frequent clauses of a cluster that vote for its suggested label
MIXED_DISTANCE = 0.6  # a member this far from its medoid is probably another finding
MIXED_SHARE = 0.05  # ... and a cluster with this share of such occurrences is worth a look
RESERVED = {PATH_COLUMN, PATIENT_COLUMN, SPLIT_COLUMN}


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


def mine_clusters(reports: ReportTable, k: int | None = None,
                  k_range: tuple[int, int] = DEFAULT_K_RANGE,
                  max_unique: int = DEFAULT_MAX_UNIQUE, seed: int = 0,
                  select_unique: int = DEFAULT_SELECT_UNIQUE) -> Mining:
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
                        f"{r.far_share:.4f}",                        " | ".join(r.examples)])
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


def read_label_map(path: str | Path) -> dict[int, str]:
    """cluster id -> label, for clusters with a label and not ignored."""
    path = Path(path)
    if not path.is_file():
        raise ReportFileError(path, "label map not found",
                              "run labels-from-reports without --apply-map first")
    # Excel on a Chinese Windows saves "CSV" as GBK: decode_file falls back to GB18030
    rows = list(csv.DictReader(io.StringIO(decode_file(path)[0], newline="")))
    if not rows or not {"cluster", "label", "ignore"} <= set(rows[0]):
        raise ReportFileError(path, "needs the columns cluster, label and ignore",
                              "edit the label_map.csv that step 1 wrote; keep its header")
    mapping: dict[int, str] = {}
    for line_no, row in enumerate(rows, start=2):
        try:
            cluster = int(row["cluster"])
        except (TypeError, ValueError):
            raise ReportFileError(path, f"line {line_no}: cluster {row['cluster']!r} is not a "
                                        "number", "keep the cluster column as written") from None
        ignore = (row.get("ignore") or "").strip().lower()
        if ignore not in ("", "0", "1", "yes", "no", "y", "n", "true", "false", "x"):
            raise ReportFileError(path, f"line {line_no}: ignore must be 0 or 1, not {ignore!r}",
                                  "write 1 to leave the cluster out, 0 to use it")
        label = (row.get("label") or "").strip()
        if ignore in ("1", "yes", "y", "true", "x") or not label:
            continue
        if label.lower() in RESERVED:
            raise ReportFileError(path, f"line {line_no}: {label!r} cannot be a label name",
                                  f"{', '.join(sorted(RESERVED))} are column names of "
                                  "labels.csv; choose another")
        mapping[cluster] = label
    return mapping


@dataclass(frozen=True)
class LabelledImages:
    """labels.csv's content, and the images left out with the reason."""

    paths: tuple[str, ...]
    patients: tuple[str, ...]
    labels: tuple[str, ...]
    y: np.ndarray  # uint8 [N, C]
    unlabelled: tuple[tuple[str, str], ...]  # (image, reason)
    normal_overridden: int  # images whose report said normal and also named a finding
    unseen_clauses: int  # distinct clauses step 1 had not seen (assigned by nearest medoid)


def clause_clusters(out: Path) -> tuple[dict[str, int], list[str]]:
    """Step 1's clause -> cluster table and the medoids (cluster order), from ``out``."""
    try:
        with open(out / "clauses.csv", newline="", encoding="utf-8-sig") as fh:
            table = {r["clause"]: int(r["cluster"]) for r in csv.DictReader(fh)}
        meta = json.loads((out / "clustering.json").read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ReportFileError(Path(err.filename), "step 1's output is missing",
                              "run labels-from-reports without --apply-map into this --out "
                              "folder first") from None
    return table, list(meta["medoids"])


def apply_label_map(reports: ReportTable, table: dict[str, int], medoids: Sequence[str],
                    mapping: dict[int, str], out: Path,
                    uid_paths: dict[str, Path] | None = None) -> LabelledImages:
    """Labels per image from the clause clusters and the user's mapping (rules: module doc)."""
    labels = list(dict.fromkeys(mapping[c] for c in sorted(mapping)))
    if not labels:
        raise ReportFileError(None, "the label map names no label",
                              "fill the label column of label_map.csv for the clusters to use")
    col = {lb: i for i, lb in enumerate(labels)}
    per_image = [split_clauses(t) for t in reports.texts]
    unseen = sorted({c for cs in per_image for c in cs if c not in table})
    if unseen:
        for clause, j in zip(unseen, nearest_medoid(unseen, medoids), strict=True):
            table[clause] = int(j)
    paths, patients, rows, unlabelled = [], [], [], []
    overridden = 0
    for ref, clauses, patient in zip(reports.refs, per_image, reports.patients, strict=True):
        image = _image_path(reports, ref, out, uid_paths)
        if image is None:
            unlabelled.append((ref, "no DICOM with this SOP Instance UID in --images"))
            continue
        found = {mapping[table[c]] for c in clauses if table[c] in mapping}
        if not found:
            reason = "empty report" if not clauses else (
                "its clauses are only in ignored or unnamed clusters "
                + ",".join(str(x) for x in sorted({table[c] for c in clauses})))
            unlabelled.append((image, reason))
            continue
        normal = {lb for lb in found if lb.lower() == NORMAL_LABEL}  # "Normal" counts too
        if normal and len(found) > len(normal):
            found -= normal
            overridden += 1
        y = np.zeros(len(labels), dtype=np.uint8)
        y[[col[lb] for lb in found]] = 1
        paths.append(image)
        patients.append(patient or image)  # no patient id: the image is its own patient
        rows.append(y)
    y = np.stack(rows) if rows else np.zeros((0, len(labels)), dtype=np.uint8)
    return LabelledImages(tuple(paths), tuple(patients), tuple(labels), y, tuple(unlabelled),
                          overridden, len(unseen))


def _image_path(reports: ReportTable, ref: str, out: Path,
                uid_paths: dict[str, Path] | None) -> str | None:
    """The image as labels.csv writes it: relative to ``out`` where possible."""
    if reports.ref_kind == "uid":
        found = (uid_paths or {}).get(ref)
        if found is None:
            return None
        target = found.resolve()
    else:
        p = Path(ref)
        target = p if p.is_absolute() else (reports.source.parent / p).resolve()
    try:
        return Path(os.path.relpath(target, out.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(target)


def write_labels(result: LabelledImages, out: Path, with_patients: bool) -> dict[str, Path]:
    """labels.csv (path[, patient_id], one 0/1 column per label) and unlabelled.csv."""
    out.mkdir(parents=True, exist_ok=True)
    labels_csv, unlabelled_csv = out / "labels.csv", out / "unlabelled.csv"
    with open(labels_csv, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow([PATH_COLUMN, *([PATIENT_COLUMN] if with_patients else []), *result.labels])
        for i, path in enumerate(result.paths):
            w.writerow([path, *([result.patients[i]] if with_patients else []),
                        *(int(v) for v in result.y[i])])
    with open(unlabelled_csv, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "reason"])
        w.writerows(result.unlabelled)
    return {"labels.csv": labels_csv, "unlabelled.csv": unlabelled_csv}


def label_counts(result: LabelledImages) -> list[tuple[str, int, int]]:
    """(label, images, images where it is the only label) per label, as in Table I."""
    single = Counter(int(np.flatnonzero(r)[0]) for r in result.y if r.sum() == 1)
    return [(lb, int(result.y[:, j].sum()), single[j]) for j, lb in enumerate(result.labels)]
