"""Label tables: the NIH ``Data_Entry_2017*.csv`` and a generic "path + one 0/1 column per label"
CSV, read into one shape that training, export and evaluation share.

NIH: ``Image Index``, ``Finding Labels`` (pipe-separated, or ``No Finding``), ``Patient ID``; any
other columns are ignored, so the full release file and the four-column sample both read.
Generic: the first column is the image path (relative to the CSV's folder, or absolute), an
optional ``patient_id`` column, an optional ``split`` column (train/val/test), and every other
column is a label holding 0 or 1.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from chexnet.inference.card import CHESTXRAY14_LABELS

NO_FINDING = "No Finding"
ABNORMAL = "abnormal"
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
    y: np.ndarray  # uint8 [N, C]
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
            raise LabelFileError(path, f"line {line_no}: label values must be 0 or 1",
                                 "fix the row or remove it") from None
        if any(v not in (0, 1) for v in values):
            raise LabelFileError(path, f"line {line_no}: label values must be 0 or 1",
                                 "fix the row or remove it")
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
    return LabelTable(tuple(ids), tuple(patients), tuple(columns),
                      np.asarray(rows, dtype=np.uint8), path, tuple(paths), tuple(split))


def select_labels(table: LabelTable, spec: str | None) -> LabelTable:
    """``None``/``"all"``: every label; ``"abnormal"``: any finding vs none; otherwise a
    comma-separated subset (``"Pneumonia"`` is the paper's pneumonia detector)."""
    if spec in (None, "", "all"):
        return table
    if spec == ABNORMAL:
        y = table.y.max(axis=1, keepdims=True)
        return replace(table, labels=(ABNORMAL,), y=y.astype(np.uint8))
    wanted = tuple(s.strip() for s in spec.split(",") if s.strip())
    unknown = [w for w in wanted if w not in table.labels]
    if unknown:
        raise LabelFileError(table.source, f"--labels names unknown label(s) {unknown}",
                             f"choose from {', '.join(table.labels)}, 'all' or 'abnormal'")
    cols = [table.labels.index(w) for w in wanted]
    return replace(table, labels=wanted, y=table.y[:, cols])
