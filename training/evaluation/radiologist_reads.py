"""Radiologist reads: the YES/NO label files, and the model-vs-readers comparison of CheXNet.

Two file formats, as released with the NIH expert labels (Nabulsi et al. 2021, Majkowska et al.
2020):

- ``test_labels.csv``: one row per image, ``Image ID``, ``Patient ID``, then one YES/NO column
  per finding (``Pleural Thickening`` with a space), read by :func:`read_reader_labels` into the
  :class:`~chexnet.training.data.labels.LabelTable` every evaluation uses;
- ``test_individual_readers.csv``: one row per reader per image, with a ``Reader ID`` column,
  read by :func:`read_individual_readers`.

The comparison (:func:`compare_readers`) follows CheXNet section 4: each reader is scored
against the majority vote of the *other* readers, and the model against the same truths; or,
with a panel, everyone outside the panel is scored against the panel's majority vote. A
finding is present in a majority vote when more than half of the voting readers say so (a tie
counts as absent; ties are counted in the results).
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.package.card import CHESTXRAY14_LABELS, label_key
from chexnet.training.data.labels import LabelFileError, LabelTable
from chexnet.training.evaluation import metrics

IMAGE_COLUMN, PATIENT_COLUMN, READER_COLUMN = "Image ID", "Patient ID", "Reader ID"
_VALUES = {"YES": 1, "NO": 0, "1": 1, "0": 0, "TRUE": 1, "FALSE": 0}


_CANONICAL = {label_key(lb): lb for lb in CHESTXRAY14_LABELS}


def canonical_label(name: str) -> str:
    """The ChestX-ray14 spelling of a ChestX-ray14 finding name (``Pleural Thickening`` and
    ``pleural_thickening`` become ``Pleural_Thickening``); every other name is returned
    stripped, never renamed to an NIH name (``pleural effusion`` stays ``pleural effusion``)."""
    return _CANONICAL.get(label_key(name), name.strip())


def _read_rows(path: Path, required: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise LabelFileError(path, "file not found", "check the path")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        rows = [r for r in reader if r and any(v.strip() for v in r)]
    missing = [c for c in required if c not in header]
    if missing:
        raise LabelFileError(path, f"no column {', '.join(repr(m) for m in missing)}",
                             f"expected the NIH expert-label layout ({', '.join(required)}, "
                             "then one YES/NO column per finding)")
    if not rows:
        raise LabelFileError(path, "no rows", "the file lists no images")
    return header, rows


def _values(path: Path, line_no: int, row: list[str], cols: list[int]) -> list[int]:
    try:
        return [_VALUES[row[c].strip().upper()] for c in cols]
    except (KeyError, IndexError):
        raise LabelFileError(path, f"line {line_no}: finding values must be YES or NO (or 1/0)",
                             "fix the row or remove it") from None


def read_reader_labels(path: str | Path) -> LabelTable:
    """Read a ``test_labels.csv``-style file (one adjudicated YES/NO row per image)."""
    path = Path(path)
    header, rows = _read_rows(path, (IMAGE_COLUMN, PATIENT_COLUMN))
    if READER_COLUMN in header:
        raise LabelFileError(path, "has a 'Reader ID' column: it holds individual reads, not "
                                   "one label per image", "pass it with --readers instead")
    cols = [i for i, h in enumerate(header) if h not in (IMAGE_COLUMN, PATIENT_COLUMN)]
    i_img, i_pat = header.index(IMAGE_COLUMN), header.index(PATIENT_COLUMN)
    ids, patients, y, seen = [], [], [], set()
    for line_no, row in enumerate(rows, start=2):
        name = row[i_img].strip()
        if name in seen:
            raise LabelFileError(path, f"line {line_no}: image {name!r} is listed twice",
                                 "keep one row per image")
        seen.add(name)
        ids.append(name)
        patients.append(row[i_pat].strip() or name)
        y.append(_values(path, line_no, row, cols))
    labels = tuple(canonical_label(header[c]) for c in cols)
    return LabelTable(tuple(ids), tuple(patients), labels, np.asarray(y, dtype=np.uint8), path)


@dataclass(frozen=True)
class ReaderTable:
    """Individual reads: ``votes`` [R, N, C] int8, 1/0, or -1 where a reader did not read an
    image."""

    ids: tuple[str, ...]
    patients: tuple[str, ...]
    readers: tuple[str, ...]
    labels: tuple[str, ...]
    votes: np.ndarray
    source: Path


def read_individual_readers(path: str | Path) -> ReaderTable:
    """Read a ``test_individual_readers.csv``-style file (one row per reader per image)."""
    path = Path(path)
    header, rows = _read_rows(path, (IMAGE_COLUMN, PATIENT_COLUMN, READER_COLUMN))
    fixed = (IMAGE_COLUMN, PATIENT_COLUMN, READER_COLUMN)
    cols = [i for i, h in enumerate(header) if h not in fixed]
    i_img, i_pat, i_rdr = (header.index(c) for c in fixed)
    image_index: dict[str, int] = {}
    reader_index: dict[str, int] = {}
    patients: list[str] = []
    reads: dict[tuple[int, int], list[int]] = {}
    for line_no, row in enumerate(rows, start=2):
        name, reader = row[i_img].strip(), row[i_rdr].strip()
        if name not in image_index:
            image_index[name] = len(image_index)
            patients.append(row[i_pat].strip() or name)
        r = reader_index.setdefault(reader, len(reader_index))
        key = (r, image_index[name])
        if key in reads:
            raise LabelFileError(path, f"line {line_no}: reader {reader} read image {name} "
                                       "twice", "keep one row per reader per image")
        reads[key] = _values(path, line_no, row, cols)
    votes = np.full((len(reader_index), len(image_index), len(cols)), -1, dtype=np.int8)
    for (r, i), values in reads.items():
        votes[r, i] = values
    return ReaderTable(tuple(image_index), tuple(patients), tuple(reader_index),
                       tuple(canonical_label(header[c]) for c in cols), votes, path)


def majority_vote(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Majority of the readers who read each image (``votes`` [k, N, ...], -1 = not read):
    present when more than half say yes. Returns (truth uint8, tie mask)."""
    yes = (votes == 1).sum(axis=0)
    n = (votes >= 0).sum(axis=0)
    return (2 * yes > n).astype(np.uint8), (2 * yes == n) & (n > 0)


def _nanmean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def _op_point(stats: dict) -> tuple[float, float] | None:
    if stats["sensitivity"] is None or stats["specificity"] is None:
        return None
    return 1.0 - stats["specificity"], stats["sensitivity"]


@dataclass
class ReaderComparison:
    """``summary`` is what readers.json holds; ``curves`` (per finding: (name, truth) pairs the
    model's ROC is drawn against) and ``points`` (per finding: (reader, 1 - specificity,
    sensitivity, truth name)) are for the plots."""

    summary: dict
    curves: dict[str, list[tuple[str, np.ndarray]]] = field(default_factory=dict)
    points: dict[str, list[tuple[str, float, float, str]]] = field(default_factory=dict)


def _truths(votes: np.ndarray, readers: list[str], panel: Sequence[str] | None):
    """(compared readers, [(truth name, truth [N, C], ties [N, C])], reader -> its truth)."""
    if panel:
        truth, ties = majority_vote(votes[[readers.index(p) for p in panel]])
        scored = [r for r in readers if r not in panel]
        return scored, [("panel majority", truth, ties)], dict.fromkeys(scored, 0)
    truths = []
    for r in readers:
        truth, ties = majority_vote(votes[[i for i, o in enumerate(readers) if o != r]])
        truths.append((f"truth for reader {r}", truth, ties))
    return readers, truths, {r: k for k, r in enumerate(readers)}


def _boot_f1(truth: np.ndarray, calls: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """Bootstrap F1 [B] (weights 0 for images a reader did not read)."""
    if not weights:
        return np.empty(0)
    return np.concatenate([metrics.weighted_f1(truth, calls, w) for w in weights])


def compare_readers(votes: np.ndarray, readers: Sequence[str], labels: Sequence[str],
                    probs: np.ndarray, thresholds: np.ndarray, patients: Sequence[str],
                    panel: Sequence[str] | None = None, n_resamples: int = 1000,
                    seed: int | None = 0, level: float = 0.95) -> ReaderComparison:
    """Readers vs the model, per finding, on aligned arrays: ``votes`` [R, N, C] (-1 = not
    read), ``probs`` [N, C], ``thresholds`` [C], one patient per image.

    Without ``panel`` every reader is scored against the majority of the others and the model
    against each of those truths in turn (its figures are the means over them); with ``panel``
    the readers outside it are scored against the panel's majority. The 95% CI of (model F1 -
    mean reader F1) comes from the patient-level bootstrap of
    :mod:`chexnet.training.evaluation.metrics`.
    """
    readers = list(readers)
    scored, truths, truth_of = _truths(votes, readers, panel)
    calls = probs >= thresholds[None, :]
    weights = list(metrics.bootstrap_weights(patients, n_resamples, seed)) if n_resamples else []
    result = ReaderComparison({
        "mode": "panel" if panel else "leave_one_out", "panel": list(panel or []),
        "comparison_readers": scored,
        "truth": ("majority vote of the panel" if panel else
                  "for each reader, the majority vote of the other readers"),
        "majority_rule": "present when more than half of the voting readers say YES; "
                         "a tie counts as absent",
        "n_images": int(probs.shape[0]), "n_patients": metrics.patient_codes(patients)[1],
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "level": level,
                      "unit": "patient"},
        "per_finding": {}})
    for c, label in enumerate(labels):
        model_stats, model_boot = [], []
        for _name, truth, _ties in truths:
            stats = metrics.binary_stats(truth[:, c], calls[:, c])
            stats["auroc"] = metrics.auroc(truth[:, c], probs[:, c])
            model_stats.append(stats)
            model_boot.append(_boot_f1(truth[:, c], calls[:, c], weights))
        entry: dict = {"threshold": float(thresholds[c]), "readers": {}}
        reader_boot = []
        for r in scored:
            name, truth, ties = truths[truth_of[r]]
            read = votes[readers.index(r), :, c]
            ok = read >= 0
            stats = metrics.binary_stats(truth[ok, c], read[ok])
            stats["n_positive"], stats["ties"] = int(truth[ok, c].sum()), int(ties[ok, c].sum())
            entry["readers"][r] = stats
            reader_boot.append(_boot_f1(truth[:, c], read == 1, [w * ok for w in weights]))
            point = _op_point(stats)
            if point is not None:
                result.points.setdefault(label, []).append((r, *point, name))
        keys = ("sensitivity", "specificity", "f1")
        entry["mean_reader"] = {k: _nanmean([entry["readers"][r][k] for r in scored])
                                for k in keys}
        if panel:
            entry["model"] = model_stats[0]
            entry["n_positive"] = int(truths[0][1][:, c].sum())
        else:
            entry["model_by_truth"] = dict(zip(readers, model_stats, strict=True))
            entry["model"] = {k: _nanmean([s[k] for s in model_stats]) for k in (*keys, "auroc")}
        m, rd = entry["model"]["f1"], entry["mean_reader"]["f1"]
        entry["f1_difference"] = None if m is None or rd is None else m - rd
        entry["f1_difference_ci"] = _difference_ci(model_boot, reader_boot, level)
        result.summary["per_finding"][label] = entry
        result.curves[label] = [(name, truth[:, c]) for name, truth, _ in truths]
    return result


def _difference_ci(model_boot: list[np.ndarray], reader_boot: list[np.ndarray],
                   level: float) -> list[float] | None:
    """Percentile CI of mean(model F1s) - mean(reader F1s) over the resamples where both are
    defined."""
    if not model_boot or not len(model_boot[0]):
        return None
    with warnings.catch_warnings():  # resamples where every F1 is undefined give NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        diff = np.nanmean(np.stack(model_boot), axis=0) - np.nanmean(np.stack(reader_boot),
                                                                      axis=0)
    diff = diff[np.isfinite(diff)]
    if len(diff) == 0:
        return None
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(diff, [tail, 100.0 - tail])
    return [float(lo), float(hi)]
