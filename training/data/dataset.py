"""Datasets on disk -> labelled images with patient-level train/val/test splits.

Two layouts:

* **NIH ChestX-ray14 as released**: ``images/`` or ``images_001..012/images/``,
  ``Data_Entry_2017.csv`` or ``Data_Entry_2017_v2020.csv``, ``train_val_list.txt`` and
  ``test_list.txt``. With both lists, test = the official test list and validation is split from
  train_val by patient. Without ``train_val_list.txt`` (e.g. the 420-image sample, which ships only
  a test list), every labelled image is split by patient into train/val/test.
* **Generic**: a CSV of image path + one 0/1 column per label (see :mod:`.labels`); an optional
  ``split`` column fixes the split, otherwise it is made by patient.

Splits are seeded, recorded in the run folder, and checked: no patient in two splits, no empty
split. Images listed but missing on disk are an error (``--allow-missing`` turns a few into a
warning with a list file), never a silently smaller dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.training.data.labels import (
    LabelTable,
    read_data_entry,
    read_label_file,
    select_labels,
    single_label,
    without_normal,
)

log = logging.getLogger(__name__)

DATA_ENTRY_NAMES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
SPLIT_NAMES = ("train", "val", "test")


class DatasetError(ValueError):
    """The dataset cannot be used as it is (one line: what is wrong and what to do)."""


@dataclass(frozen=True)
class Splits:
    """A label table (with resolved paths) and the row indices of each split."""

    table: LabelTable
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    description: str
    seed: int
    task: str = "multi-label"
    selection: dict = field(default_factory=dict)  # single-label: what was kept / left out

    def summary(self) -> dict:
        out = {"source": str(self.table.source), "labels": list(self.table.labels),
               "split_rule": self.description, "seed": self.seed, "task": self.task}
        if self.selection:
            out["single_label_selection"] = self.selection
        for name in SPLIT_NAMES:
            rows = getattr(self, name)
            y = self.table.y[rows]
            out[name] = {"images": len(rows),
                         "patients": len({self.table.patients[i] for i in rows}),
                         "positives": {lb: int(y[:, j].sum())
                                       for j, lb in enumerate(self.table.labels)}}
        return out

    def write_lists(self, folder: Path) -> None:
        """Record which image went where (reproducibility, and the test set for eval)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in SPLIT_NAMES:
            rows = getattr(self, name)
            (folder / f"{name}_list.txt").write_text(
                "".join(f"{self.table.ids[i]}\n" for i in rows), encoding="utf-8")


def load_dataset(data: Path, *, labels: str | None = None, val_fraction: float = 0.1,
                 test_fraction: float = 0.2, seed: int = 0, allow_missing: bool = False,
                 report_dir: Path | None = None, task: str = "multi-label") -> Splits:
    """Read an NIH release folder or a generic CSV and split it by patient.

    ``task="single-label"`` keeps the images carrying exactly one label
    (:func:`.labels.single_label`) before splitting; multi-label leaves out a ``normal`` /
    ``No Finding`` column (:func:`.labels.without_normal`)."""
    data = Path(data)
    if data.is_dir():
        table, official = _read_nih(data)
    elif data.is_file():
        table, official = read_label_file(data), None
    else:
        raise DatasetError(f"{data}: no such folder or file (give the NIH release folder or a "
                           "CSV of image paths and labels)")
    table = select_labels(table, labels)
    table = _drop_missing(table, allow_missing, report_dir)
    selection = {}
    if task == "single-label":
        table, selection = single_label(table)
    elif task == "multi-label":
        table = without_normal(table, labels)
    else:
        raise DatasetError(f"unknown task {task!r}: choose multi-label or single-label")
    rng = np.random.default_rng(seed)
    if official is not None:
        index = table.index()  # after dropping missing images: their names leave the lists
        train_val, test = (np.array([index[n] for n in names if n in index], dtype=np.int64)
                           for names in official)
        train, val = _split_rows_by_patient(table, train_val, (1 - val_fraction, val_fraction),
                                            rng)
        rule = (f"official test_list.txt; validation = {val_fraction:.0%} of train_val patients "
                f"(seed {seed})")
    elif table.split:
        train, val, test = _explicit_splits(table)
        rule = "the CSV's split column"
    else:
        fractions = (1 - val_fraction - test_fraction, val_fraction, test_fraction)
        train, val, test = _split_rows_by_patient(table, np.arange(len(table)), fractions, rng)
        rule = (f"by patient: train/val/test = {fractions[0]:.0%}/{fractions[1]:.0%}/"
                f"{fractions[2]:.0%} (seed {seed})")
    splits = Splits(table, train, val, test, rule, seed, task, selection)
    _check_splits(splits)
    return splits


def find_nih_images(root: Path) -> dict[str, Path]:
    """Image file name -> path, from ``images/`` and ``images_*/images/`` (as NIH ships them)."""
    folders = [root / "images", *sorted(root.glob("images_*/images"))]
    found: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for p in folder.iterdir():
                found.setdefault(p.name, p)
    return found


def _read_nih(root: Path) -> tuple[LabelTable, tuple[list[str], list[str]] | None]:
    """The label table and the official (train_val, test) image names, if listed."""
    entry = next((root / n for n in DATA_ENTRY_NAMES if (root / n).is_file()), None)
    if entry is None:
        raise DatasetError(f"{root}: no {' or '.join(DATA_ENTRY_NAMES)} (is this the NIH "
                           "ChestX-ray14 folder?)")
    table = read_data_entry(entry)
    images = find_nih_images(root)
    if not images:
        raise DatasetError(f"{root}: no images/ or images_*/images/ folder with images")
    paths = tuple(images.get(name) for name in table.ids)
    table = LabelTable(table.ids, table.patients, table.labels, table.y, entry, paths)
    test_file, tv_file = root / "test_list.txt", root / "train_val_list.txt"
    if not tv_file.is_file():
        log.info("%s: no train_val_list.txt: splitting all labelled images by patient", root)
        return table, None
    index = table.index()
    lists = []
    for f in (tv_file, test_file):
        names = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
        unknown = [n for n in names if n not in index]
        if unknown:
            raise DatasetError(f"{f}: {len(unknown)} image(s) not in {entry.name} "
                               f"(first: {unknown[0]}); use the lists of the same release")
        lists.append(names)
    return table, (lists[0], lists[1])


def _drop_missing(table: LabelTable, allow: bool, report_dir: Path | None) -> LabelTable:
    missing = [i for i, p in enumerate(table.paths) if p is None or not Path(p).is_file()]
    if not missing:
        return table
    names = [table.ids[i] for i in missing]
    if not allow or len(missing) > max(10, len(table) // 100):
        raise DatasetError(
            f"{table.source}: {len(missing)} of {len(table)} listed images are missing on disk "
            f"(first: {names[0]}); restore them, or pass --allow-missing to skip up to 1%")
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "missing_images.txt").write_text("\n".join(names) + "\n")
    log.warning("%d listed images are missing and were skipped (list: missing_images.txt)",
                len(missing))
    keep = np.setdiff1d(np.arange(len(table)), missing)
    return table.subset(keep)


def _split_rows_by_patient(table: LabelTable, rows: np.ndarray, fractions: tuple[float, ...],
                           rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    patients = np.array([table.patients[i] for i in rows])
    unique = np.unique(patients)
    rng.shuffle(unique)
    bounds = np.cumsum(np.round(np.array(fractions) * len(unique)).astype(int))[:-1]
    groups = np.split(unique, bounds)
    return tuple(np.sort(rows[np.isin(patients, g)]) for g in groups)


def _explicit_splits(table: LabelTable) -> tuple[np.ndarray, ...]:
    bad = sorted({v for v in table.split if v not in SPLIT_NAMES})
    if bad:
        raise DatasetError(f"{table.source}: split column values must be train/val/test, "
                           f"found {bad}")
    return tuple(np.array([i for i, v in enumerate(table.split) if v == s], dtype=np.int64)
                 for s in SPLIT_NAMES)


def _check_splits(splits: Splits) -> None:
    seen: dict[str, str] = {}
    for name in SPLIT_NAMES:
        rows = getattr(splits, name)
        if len(rows) == 0:
            raise DatasetError(f"{splits.table.source}: the {name} split is empty "
                               f"({splits.description}); add data or change the fractions")
        for i in rows:
            patient = splits.table.patients[i]
            other = seen.setdefault(patient, name)
            if other != name:
                raise DatasetError(f"{splits.table.source}: patient {patient} is in both the "
                                   f"{other} and the {name} split; a patient's images must stay "
                                   "in one split")
