"""Inputs of ``chexnet eval``: label files, predictions CSVs, box lists, and model runs.

Every problem with a file is an :class:`EvalInputError` whose message is one line naming the
file, the problem and what to do.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.io.study import iter_files, load_image
from chexnet.training.data.dataset import DATA_ENTRY_NAMES
from chexnet.training.data.labels import LabelFileError, LabelTable, read_label_file
from chexnet.training.evaluation.radiologist_reads import (
    IMAGE_COLUMN,
    READER_COLUMN,
    canonical_label,
    read_reader_labels,
)

log = logging.getLogger(__name__)

ID_COLUMNS = ("Image Index", "Image ID", "path")
#: predictions.csv's columns naming the model that made each row (``chexnet eval --model``).
MODEL_SHA_COLUMN, MODEL_DEMO_COLUMN = "model_sha256", "model_demo"
NON_LABEL_COLUMNS = {"Patient ID", "patient_id", "Follow-up #", MODEL_SHA_COLUMN,
                     MODEL_DEMO_COLUMN}
#: The NIH box list's names that are not ChestX-ray14 spellings.
BOX_LABEL_ALIASES = {"infiltrate": "Infiltration"}
_TRUE = {"true", "1", "yes"}


class EvalInputError(LabelFileError):
    """An input file of the evaluation that cannot be used (one line: file, problem, advice)."""


@dataclass(frozen=True)
class PredictionTable:
    """Probabilities [N, C] per image id; ChestX-ray14 labels in their NIH spelling, other
    labels as named."""

    ids: tuple[str, ...]
    labels: tuple[str, ...]
    probs: np.ndarray
    source: Path | None = None
    #: the model that made the predictions, where the CSV says (``model_sha256`` and
    #: ``model_demo`` columns): its distinct sha256s, and whether any row is a demo model's
    model_sha256: tuple[str, ...] = ()
    model_demo: bool | None = None


def _header(path: Path) -> list[str]:
    if not path.is_file():
        raise EvalInputError(path, "file not found", "check the path")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def _data_rows(path: Path):
    """(line number, row) for every non-blank row after the header."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for line_no, rec in enumerate(reader, start=2):
            if rec and any(v.strip() for v in rec):
                yield line_no, rec


def label_file_layout(path: str | Path) -> str:
    """``nih-data-entry`` (Image Index + Finding Labels), ``nih-expert-labels`` (the YES/NO
    Image ID layout of the NIH expert labels) or ``generic``."""
    header = _header(Path(path))
    if "Image Index" in header and "Finding Labels" in header:
        return "nih-data-entry"
    if IMAGE_COLUMN in header and "Image Index" not in header:
        return "nih-expert-labels"
    return "generic"


GENERIC_LABELS_NAME = "labels.csv"  # e.g. the viewer's exported reader feedback


def find_label_file(data_dir: Path) -> tuple[Path | None, list[Path]]:
    """The label file in ``data_dir`` for eval and tune without ``--labels``: the NIH
    ``Data_Entry_2017*.csv`` (v2020 first), else ``labels.csv``; and every candidate found."""
    found = sorted(data_dir.glob("Data_Entry_2017*.csv"))
    generic = data_dir / GENERIC_LABELS_NAME
    if generic.is_file():
        found.append(generic)
    preferred = [data_dir / n for n in DATA_ENTRY_NAMES if (data_dir / n).is_file()]
    return (preferred or found or [None])[0], found


def load_truth(path: str | Path) -> LabelTable:
    """An NIH Data_Entry CSV, a generic path + 0/1 CSV, or a ``test_labels.csv`` YES/NO file
    (recognised by its header); ChestX-ray14 label names in their NIH spelling, other names as
    written."""
    path = Path(path)
    header = _header(path)
    if READER_COLUMN in header:
        raise EvalInputError(path, "holds one row per reader (it has a 'Reader ID' column)",
                             "pass it with --readers, and give --labels one label per image")
    if IMAGE_COLUMN in header and "Image Index" not in header:
        table = read_reader_labels(path)
    else:
        table = read_label_file(path)
    labels = tuple(canonical_label(lb) for lb in table.labels)
    if len(set(labels)) != len(labels):
        raise EvalInputError(path, f"label columns repeat a finding: {list(table.labels)}",
                             "keep one column per finding")
    return LabelTable(table.ids, table.patients, labels, table.y, table.source, table.paths)


def read_predictions(path: str | Path) -> PredictionTable:
    """A CSV with an ``Image Index`` column (or ``Image ID`` / ``path``) and one probability
    column per label; label names are matched in any spelling (``Pleural Thickening`` =
    ``Pleural_Thickening``)."""
    path = Path(path)
    header = _header(path)
    id_col = next((c for c in ID_COLUMNS if c in header), None)
    if id_col is None:
        raise EvalInputError(path, "no 'Image Index' column", "the predictions CSV needs an "
                             "'Image Index' column naming each image, then one column per label")
    cols = [i for i, h in enumerate(header) if h != id_col and h not in NON_LABEL_COLUMNS]
    labels = tuple(canonical_label(header[i]) for i in cols)
    if not cols or len(set(labels)) != len(labels):
        raise EvalInputError(path, f"label columns {[header[i] for i in cols]} are missing or "
                             "repeat a finding", "give one probability column per label")
    i_id = header.index(id_col)
    i_sha = header.index(MODEL_SHA_COLUMN) if MODEL_SHA_COLUMN in header else None
    i_demo = header.index(MODEL_DEMO_COLUMN) if MODEL_DEMO_COLUMN in header else None
    ids, rows, seen, shas, demo = [], [], set(), {}, None
    for line_no, rec in _data_rows(path):
        try:
            values = [float(rec[i]) for i in cols]
        except (ValueError, IndexError):
            raise EvalInputError(path, f"line {line_no}: a probability is missing or not a "
                                 "number", "fix the row or remove it") from None
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
            raise EvalInputError(path, f"line {line_no}: probabilities must lie in [0, 1]",
                                 "write probabilities (after the sigmoid), not logits")
        name = rec[i_id].strip()
        if name in seen:
            raise EvalInputError(path, f"line {line_no}: image {name!r} is listed twice",
                                 "keep one row per image")
        seen.add(name)
        ids.append(name)
        rows.append(values)
        if i_sha is not None and i_sha < len(rec) and rec[i_sha].strip():
            shas.setdefault(rec[i_sha].strip(), line_no)
        if i_demo is not None and i_demo < len(rec) and rec[i_demo].strip():
            demo = bool(demo) or rec[i_demo].strip().lower() in _TRUE
    if not ids:
        raise EvalInputError(path, "no rows", "the predictions CSV lists no images")
    return PredictionTable(tuple(ids), labels, np.asarray(rows, dtype=np.float64), path,
                           tuple(shas), demo)


def write_predictions(path: Path, table: PredictionTable, model_sha256: str | None = None,
                      model_demo: bool | None = None) -> None:
    """``Image Index``, one probability column per label and, with a model, the columns
    ``model_sha256`` and ``model_demo`` (true/false) last; :func:`read_predictions` reads both
    this and the older layout without them."""
    model = [] if model_sha256 is None else [model_sha256, "true" if model_demo else "false"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["Image Index", *table.labels,
                      *([MODEL_SHA_COLUMN, MODEL_DEMO_COLUMN] if model else [])])
        for name, row in zip(table.ids, table.probs, strict=True):
            out.writerow([name, *(f"{v:.7g}" for v in row), *model])


def match_ids(left: Sequence[str], right: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j) with ``left[i]`` naming the same image as ``right[j]``: the same string,
    else the same file name (when that name is unique on both sides). Sorted by ``j``."""
    exact = {name: j for j, name in enumerate(right)}
    pairs = {i: exact[name] for i, name in enumerate(left) if name in exact}
    taken = set(pairs.values())

    def by_name(names, skip):
        counts: dict[str, list[int]] = {}
        for k, name in enumerate(names):
            if k not in skip:
                counts.setdefault(Path(name.replace("\\", "/")).name, []).append(k)
        return {n: ks[0] for n, ks in counts.items() if len(ks) == 1}

    left_names, right_names = by_name(left, set(pairs)), by_name(right, taken)
    for name, i in left_names.items():
        if name in right_names:
            pairs[i] = right_names[name]
    ordered = sorted(pairs.items(), key=lambda p: p[1])
    li = np.array([p[0] for p in ordered], dtype=np.int64)
    ri = np.array([p[1] for p in ordered], dtype=np.int64)
    return li, ri


@dataclass(frozen=True)
class Box:
    """A radiologist's box: (x, y, w, h) in the original image's pixel coordinates."""

    image: str
    label: str
    x: float
    y: float
    w: float
    h: float


def read_bboxes(path: str | Path) -> list[Box]:
    """NIH ``BBox_List_2017.csv``: Image Index, Finding Label, x, y, w, h (extra empty columns
    of the official file are ignored)."""
    path = Path(path)
    _header(path)
    boxes = []
    for line_no, rec in _data_rows(path):
        try:
            x, y, w, h = (float(v) for v in rec[2:6])
        except ValueError:
            raise EvalInputError(path, f"line {line_no}: x, y, w, h must be numbers",
                                 "use the BBox_List_2017.csv layout: Image Index, Finding "
                                 "Label, x, y, w, h") from None
        if len(rec) < 6 or w <= 0 or h <= 0:
            raise EvalInputError(path, f"line {line_no}: a box needs x, y and a positive "
                                 "w and h", "fix the row or remove it")
        label = BOX_LABEL_ALIASES.get(rec[1].strip().casefold(), canonical_label(rec[1]))
        boxes.append(Box(rec[0].strip(), label, x, y, w, h))
    if not boxes:
        raise EvalInputError(path, "no boxes", "the box list is empty")
    return boxes


def locate_images(table: LabelTable, data_dir: Path | None) -> list[Path | None]:
    """The file of each label row: its path (generic CSV), ``data_dir / id``, or the file of
    that name anywhere below ``data_dir``; ``None`` when there is none."""
    by_name: dict[str, Path] | None = None
    found: list[Path | None] = []
    for k, name in enumerate(table.ids):
        candidates = [table.paths[k]] if table.paths and table.paths[k] else []
        if data_dir is not None:
            candidates.append(data_dir / name)
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None and data_dir is not None:
            if by_name is None:
                by_name = {}
                for p in iter_files([data_dir]):
                    by_name.setdefault(p.name, p)
            hit = by_name.get(Path(name).name)
        found.append(hit)
    return found


@dataclass
class ModelRun:
    """What the engine made of the located images."""

    predictions: PredictionTable
    cams: dict[str, tuple] = field(default_factory=dict)  # id -> (cams, crop_box, shape)
    unreadable: list[str] = field(default_factory=list)  # one-line errors
    not_analysed: list[str] = field(default_factory=list)


def run_model(engine, ids: Sequence[str], paths: Sequence[Path], keep_cams: set[str],
              max_pixels: int = DEFAULT_MAX_PIXELS) -> ModelRun:
    """Score the images (``ids[k]`` is the file ``paths[k]``) in batches; unreadable and
    not-analysed images are listed, not scored. CAMs are kept for file names in ``keep_cams``.
    """
    out_ids, rows = [], []
    run = ModelRun(PredictionTable((), tuple(engine.labels), np.empty((0, 0))))
    step = engine.batch_size
    for start in range(0, len(paths), step):
        loaded, names = [], []
        for name, path in zip(ids[start:start + step], paths[start:start + step], strict=True):
            try:
                loaded.append(load_image(path, max_pixels=max_pixels))
                names.append(name)
            except ChexnetInputError as err:
                run.unreadable.append(str(err))
        for name, pred in zip(names, engine.predict(loaded), strict=True):
            if not pred.analysed:
                run.not_analysed.append(f"{pred.path}: not analysed ({'; '.join(pred.reasons)})")
                continue
            out_ids.append(name)
            rows.append(np.asarray(pred.probabilities, dtype=np.float64))
            if Path(name).name in keep_cams:
                run.cams[name] = (pred.cams, pred.crop_box, pred.image_shape)
        if start // step % 50 == 0:
            log.info("scored %d of %d images", min(start + step, len(paths)), len(paths))
    probs = np.stack(rows) if rows else np.empty((0, len(engine.labels)))
    run.predictions = PredictionTable(tuple(out_ids),
                                      tuple(canonical_label(lb) for lb in engine.labels), probs)
    return run
