"""Step 2 of mining labels: the user's edited label map -> labels.csv for chexnet-train.

:func:`read_label_map` reads the edited ``label_map.csv``, :func:`apply_label_map` turns the
reports into one 0/1 column per label, :func:`write_labels` writes ``labels.csv`` and
``unlabelled.csv``. Rules: several clusters may share a label (they merge); a cluster with
``ignore`` = 1 or an empty label contributes nothing; a clause step 1 never saw joins its nearest
medoid of the same assertion group (a new negated clause never joins a positive cluster);
``normal`` is set only when the report maps to ``normal`` and to no finding (a finding
wins); an image whose clauses map to no label at all is left out of labels.csv and listed in
``unlabelled.csv`` with the reason -- it is unknown, not normal.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chexnet.inference.package.hashing import sha256_file
from chexnet.training.data.labels import PATIENT_COLUMN, SPLIT_COLUMN
from chexnet.training.reports.assertion_clauses import clause_group, mining_clauses
from chexnet.training.reports.cluster import nearest_medoid
from chexnet.training.reports.findings import Vocabulary, builtin_vocabulary
from chexnet.training.reports.report_files import (
    ReportFileError,
    ReportTable,
    decode_file,
    index_dicoms_by_uid,
)
from chexnet.training.reports.vocab import NORMAL_LABEL

PATH_COLUMN = "path"
RESERVED = {PATH_COLUMN, PATIENT_COLUMN, SPLIT_COLUMN}


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


@dataclass
class ClauseClusters:
    """Step 1's output as step 2 reads it back: clause -> cluster (clauses step 2 meets for the
    first time are added), the medoids in cluster order, and the sha256 of the reports file
    step 1 clustered."""

    table: dict[str, int]
    medoids: list[str]
    reports_sha256: str | None

    def made_from(self, reports: ReportTable) -> bool:
        """Whether step 1 clustered this very reports file."""
        return self.reports_sha256 == sha256_file(reports.source)


def read_clause_clusters(out: Path) -> ClauseClusters:
    """Step 1's clauses.csv and clustering.json from ``out``."""
    try:
        with open(out / "clauses.csv", newline="", encoding="utf-8-sig") as fh:
            table = {r["clause"]: int(r["cluster"]) for r in csv.DictReader(fh)}
        meta = json.loads((out / "clustering.json").read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ReportFileError(Path(err.filename), "step 1's output is missing",
                              "run labels-from-reports without --apply-map into this --out "
                              "folder first") from None
    return ClauseClusters(table, list(meta["medoids"]), meta.get("reports_sha256"))


def label_reports(reports: ReportTable, clusters: ClauseClusters, label_map: Path, out: Path,
                  images: Path | None = None, vocab: Vocabulary | None = None
                  ) -> tuple[LabelledImages, dict[str, Path]]:
    """Step 2 whole: read the edited ``label_map``, label every report, write labels.csv and
    unlabelled.csv into ``out``. ``images``: the DICOM folder when the reports name images by
    SOP Instance UID."""
    uid_paths = index_dicoms_by_uid(images) if reports.ref_kind == "uid" else None
    mapping = read_label_map(label_map)
    result = apply_label_map(reports, clusters, mapping, out, uid_paths, vocab)
    return result, write_labels(result, out, reports.has_patients)


def apply_label_map(reports: ReportTable, clusters: ClauseClusters, mapping: dict[int, str],
                    out: Path, uid_paths: dict[str, Path] | None = None,
                    vocab: Vocabulary | None = None) -> LabelledImages:
    """Labels per image from the clause clusters and the user's mapping (rules: module doc)."""
    table = clusters.table
    labels = list(dict.fromkeys(mapping[c] for c in sorted(mapping)))
    if not labels:
        raise ReportFileError(None, "the label map names no label",
                              "fill the label column of label_map.csv for the clusters to use")
    col = {lb: i for i, lb in enumerate(labels)}
    per_image = [mining_clauses(t) for t in reports.texts]
    unseen = sorted({c for cs in per_image for c in cs if c not in table})
    if unseen:
        vocab = vocab or builtin_vocabulary()
        medoid_group = [clause_group(m, vocab) for m in clusters.medoids]
        by_group: dict[str, list[str]] = {}
        for clause in unseen:
            by_group.setdefault(clause_group(clause, vocab), []).append(clause)
        for group, new in by_group.items():
            ids = [j for j, g in enumerate(medoid_group) if g == group] or list(
                range(len(clusters.medoids)))
            near = nearest_medoid(new, [clusters.medoids[j] for j in ids])
            for clause, j in zip(new, near, strict=True):
                table[clause] = ids[int(j)]
    paths, patients, rows, unlabelled = [], [], [], []
    overridden = 0
    for ref, clauses, patient in zip(reports.refs, per_image, reports.patients, strict=True):
        image = image_path(reports, ref, out, uid_paths)
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


def image_path(reports: ReportTable, ref: str, out: Path,
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
