"""Label tables: the NIH ``Data_Entry_2017*.csv`` and a generic "path + one 0/1 column per label"
CSV, read into one shape that training, export and evaluation share.

NIH: ``Image Index``, ``Finding Labels`` (pipe-separated, or ``No Finding``), ``Patient ID``; any
other columns are ignored, so the full release file and the four-column sample both read.
Generic: the first column is the image path (relative to the CSV's folder, or absolute), an
optional ``patient_id`` column, an optional ``split`` column (train/val/test), and every other
column is a label holding 0 or 1, or -1 for "uncertain" (``chexnet labels-from-reports --auto``
writes it; :mod:`.uncertain` holds what training does with it). A file with -1 values reads into
an int8 ``y``; one without keeps uint8.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from chexnet.inference.package.card import CHESTXRAY14_LABELS, NORMAL_LABELS, is_normal_label

log = logging.getLogger(__name__)

NO_FINDING = "No Finding"
ABNORMAL = "abnormal"
#: Column names that mean "the report says this image is normal" (any case, with spaces, "_" or
#: "-": the model card's ``label_key``): the generic CSV's ``normal`` column (``chexnet
#: labels-from-reports`` writes it) and NIH's "No Finding". One list with inference's.
NORMAL_NAMES = NORMAL_LABELS
PATIENT_COLUMN = "patient_id"
SPLIT_COLUMN = "split"  # optional in the generic layout: train / val / test


class LabelFileError(ValueError):
    """A label file that cannot be used as it is (one line: file, problem, what to do)."""

    def __init__(self, path: str | Path, problem: str, advice: str) -> None:
        super().__init__(f"{path}: {problem} ({advice})")


@dataclass(frozen=True)
class LabelTable:
    """N images x C labels. ``ids`` are NIH ``Image Index`` names or generic-CSV paths as
    written; ``paths`` are resolved files where known (generic layout) else None."""

    ids: tuple[str, ...]
    patients: tuple[str, ...]
    labels: tuple[str, ...]
    y: np.ndarray  # uint8 [N, C]; int8 when the generic CSV has -1 (uncertain) values
    source: Path
    paths: tuple[Path | None, ...] = ()
    split: tuple[str, ...] = ()  # the generic CSV's split column, when it has one

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray | list[int]) -> LabelTable:
        rows = np.asarray(rows, dtype=np.int64)
        return replace(self, ids=tuple(self.ids[i] for i in rows),
                       patients=tuple(self.patients[i] for i in rows), y=self.y[rows],
                       paths=tuple(self.paths[i] for i in rows) if self.paths else (),
                       split=tuple(self.split[i] for i in rows) if self.split else ())

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.ids)}


def read_label_file(path: str | Path, labels: tuple[str, ...] | None = None) -> LabelTable:
    """Read an NIH Data_Entry CSV or a generic CSV (recognised by its header)."""
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(path, "label file not found", "check the path")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh), None)
    if not header:
        raise LabelFileError(path, "the file is empty", "give a CSV with a header row")
    if "Image Index" in header and "Finding Labels" in header:
        return read_data_entry(path, labels or CHESTXRAY14_LABELS)
    return read_generic_csv(path, labels)


def read_data_entry(path: str | Path, labels: tuple[str, ...] = CHESTXRAY14_LABELS
                    ) -> LabelTable:
    path = Path(path)
    known = set(CHESTXRAY14_LABELS) | {NO_FINDING}
    ids, patients, rows = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for line_no, rec in enumerate(csv.DictReader(fh), start=2):
            findings = [f.strip() for f in (rec.get("Finding Labels") or "").split("|") if f]
            unknown = set(findings) - known
            if unknown:
                raise LabelFileError(path, f"line {line_no}: unknown finding(s) "
                                           f"{sorted(unknown)}",
                                     f"ChestX-ray14 labels are {', '.join(CHESTXRAY14_LABELS)}")
            ids.append(rec["Image Index"].strip())
            patients.append((rec.get("Patient ID") or rec["Image Index"].split("_")[0]).strip())
            rows.append([1 if lb in findings else 0 for lb in labels])
    if not ids:
        raise LabelFileError(path, "no rows", "the label file lists no images")
    return LabelTable(tuple(ids), tuple(patients), tuple(labels),
                      np.asarray(rows, dtype=np.uint8).reshape(len(ids), len(labels)), path)


def read_generic_csv(path: str | Path, labels: tuple[str, ...] | None = None) -> LabelTable:
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        records = list(reader)
    path_col = header[0]
    columns = [c for c in header[1:] if c not in (PATIENT_COLUMN, SPLIT_COLUMN)]
    if labels is not None:
        missing = [lb for lb in labels if lb not in columns]
        if missing:
            raise LabelFileError(path, f"no column for label(s) {missing}",
                                 f"the file's label columns are {columns}")
        columns = list(labels)
    if not columns:
        raise LabelFileError(path, "no label columns", f"after '{path_col}', add one 0/1 "
                                                       "column per label")
    pos = {c: header.index(c) for c in columns}
    pat = header.index(PATIENT_COLUMN) if PATIENT_COLUMN in header else None
    spl = header.index(SPLIT_COLUMN) if SPLIT_COLUMN in header else None
    ids, patients, rows, paths, split = [], [], [], [], []
    for line_no, rec in enumerate(records, start=2):
        if not rec or not rec[0].strip():
            continue
        try:
            values = [int(rec[pos[c]]) for c in columns]
        except (ValueError, IndexError):
            raise LabelFileError(path, f"line {line_no}: label values must be 0 or 1 (-1: "
                                 "uncertain)", "fix the row or remove it") from None
        if any(v not in (0, 1, -1) for v in values):
            raise LabelFileError(path, f"line {line_no}: label values must be 0 or 1 (-1: "
                                 "uncertain)", "fix the row or remove it")
        name = rec[0].strip()
        ids.append(name)
        patients.append(rec[pat].strip() if pat is not None else name)
        if spl is not None:
            split.append(rec[spl].strip().lower() if spl < len(rec) else "")
        rows.append(values)
        p = Path(name)
        paths.append(p if p.is_absolute() else path.parent / p)
    if not ids:
        raise LabelFileError(path, "no rows", "the label file lists no images")
    y = np.asarray(rows, dtype=np.int8)
    return LabelTable(tuple(ids), tuple(patients), tuple(columns),
                      y if (y < 0).any() else y.astype(np.uint8), path, tuple(paths),
                      tuple(split))


def normal_column(labels: tuple[str, ...]) -> int | None:
    """Index of the label column meaning "normal" (see :data:`NORMAL_NAMES`), or None."""
    found = [j for j, lb in enumerate(labels) if is_normal_label(lb)]
    return found[0] if found else None


def finding_columns(labels: tuple[str, ...]) -> list[int]:
    """Indices of the labels that are findings: all but ``normal`` / ``No Finding`` in any
    spelling (the package card's ``is_normal_label``, as inference decides), which is the
    absence of findings."""
    return [j for j, lb in enumerate(labels) if not is_normal_label(lb)]


def without_normal(table: LabelTable, spec: str | None = None) -> LabelTable:
    """The finding columns only: a multi-label model learns findings, and ``normal`` / ``No
    Finding`` is their absence (an image with no positive finding), not a label to train. A
    ``spec`` (``--labels``) that names it explicitly is refused."""
    normal = [j for j, lb in enumerate(table.labels) if is_normal_label(lb)]
    if not normal:
        return table
    names = [table.labels[j] for j in normal]
    if spec not in (None, "", "all", ABNORMAL):
        raise LabelFileError(table.source, f"--labels names {', '.join(names)}, the absence of "
                             "findings, not a finding to learn",
                             "leave it out (an image with no finding is normal), use --labels "
                             "abnormal, or --task single-label where normal is a class")
    if len(normal) == len(table.labels):
        raise LabelFileError(table.source, f"no finding column besides {', '.join(names)}",
                             "add one 0/1 column per finding")
    log.info("multi-label: %s is the absence of findings, not a label; it is not trained",
             ", ".join(repr(n) for n in names))
    keep = [j for j in range(len(table.labels)) if j not in normal]
    return replace(table, labels=tuple(table.labels[j] for j in keep), y=table.y[:, keep])


def select_labels(table: LabelTable, spec: str | None) -> LabelTable:
    """``None``/``"all"``: every label; ``"abnormal"``: abnormal vs normal; otherwise a
    comma-separated subset (``"Pneumonia"`` is the paper's pneumonia detector).

    ``abnormal`` follows the hospital CAD paper ("all cases except those marked as normal"):
    with a ``normal`` column, abnormal = not normal; without one (NIH), abnormal = any finding.
    """
    if spec in (None, "", "all"):
        return table
    if spec == ABNORMAL:
        normal = normal_column(table.labels)
        y = table.y.astype(np.int8)
        if normal is not None:  # not normal; an uncertain normal stays uncertain
            y = np.where(y[:, [normal]] < 0, -1, 1 - y[:, [normal]])
        else:  # any finding; else uncertain when one is uncertain
            y = np.where((y == 1).any(axis=1, keepdims=True), 1,
                         np.where((y < 0).any(axis=1, keepdims=True), -1, 0))
        return replace(table, labels=(ABNORMAL,),
                       y=y.astype(np.int8 if (y < 0).any() else np.uint8))
    wanted = tuple(s.strip() for s in spec.split(",") if s.strip())
    unknown = [w for w in wanted if w not in table.labels]
    if unknown:
        raise LabelFileError(table.source, f"--labels names unknown label(s) {unknown}",
                             f"choose from {', '.join(table.labels)}, 'all' or 'abnormal'")
    cols = [table.labels.index(w) for w in wanted]
    return replace(table, labels=wanted, y=table.y[:, cols])


def single_label(table: LabelTable) -> tuple[LabelTable, dict]:
    """The images carrying exactly one label, one class per label (the hospital CAD paper's
    single-disease task: softmax over the classes).

    A ``normal`` column (see :data:`NORMAL_NAMES`) is a class like any other. Without one, the
    images with no label at all become the class ``No Finding`` (NIH's name for them), appended
    last; with one, images with no label carry no class and are left out. Images with two or
    more labels are left out. Classes left without any image are dropped (and named in the
    returned summary, which also counts what was left out).
    """
    y = (table.y == 1).astype(np.uint8)  # uncertain (-1) is not a class: not this label
    labels = table.labels
    n_pos = y.sum(axis=1)
    if normal_column(labels) is None:
        y = np.column_stack([y, (n_pos == 0).astype(np.uint8)])
        labels = (*labels, NO_FINDING)
        n_pos = y.sum(axis=1)
    keep = np.flatnonzero(n_pos == 1)
    counts = y[keep].sum(axis=0)
    empty = [lb for lb, c in zip(labels, counts, strict=True) if c == 0]
    cols = [j for j, c in enumerate(counts) if c > 0]
    summary = {"images": len(table), "kept": len(keep),
               "left_out_multi_label": int((n_pos >= 2).sum()),
               "left_out_unlabelled": int((n_pos == 0).sum()),
               "classes_without_images": empty,
               "no_finding_class": NO_FINDING if labels[-1] == NO_FINDING and
               NO_FINDING not in table.labels else None}
    if len(cols) < 2:
        raise LabelFileError(table.source, f"only {len(cols)} class(es) have images carrying "
                             "exactly one label", "single-label training needs at least two; "
                             "use the multi-label task")
    if empty:
        log.warning("single-label: no image carries only %s; dropped as classes",
                    ", ".join(empty))
    log.info("single-label: %d of %d images carry exactly one label (%d with several and %d "
             "without a class left out)", len(keep), len(table),
             summary["left_out_multi_label"], summary["left_out_unlabelled"])
    sub = table.subset(keep)
    return replace(sub, labels=tuple(labels[j] for j in cols), y=y[keep][:, cols]), summary


def truth_for_model(truth: LabelTable, model_labels: tuple[str, ...], task: str) -> LabelTable:
    """The truth columns a model's labels need when a label file lacks them: ``abnormal``
    (derived as in :func:`select_labels`) and, for a single-label model trained with a
    ``No Finding`` class (NIH, or a CSV without a ``normal`` column), ``No Finding`` = the
    images with no label. Other tables are returned as they are."""
    if ABNORMAL in model_labels and ABNORMAL not in truth.labels:
        abnormal = select_labels(truth, ABNORMAL)
        truth = replace(truth, labels=(*truth.labels, ABNORMAL),
                        y=np.concatenate([truth.y, abnormal.y], axis=1))
    if (task == "single-label" and NO_FINDING in model_labels
            and NO_FINDING not in truth.labels and normal_column(truth.labels) is None):
        finding = [j for j, lb in enumerate(truth.labels) if lb != ABNORMAL]
        none = (truth.y[:, finding].sum(axis=1) == 0).astype(np.uint8)[:, None]
        truth = replace(truth, labels=(*truth.labels, NO_FINDING),
                        y=np.concatenate([truth.y, none], axis=1))
    return truth
