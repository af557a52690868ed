"""Files and folders -> studies, series and instances; one entry point to load any image.

A folder is read as DICOM headers only (no pixel decoding) to group instances by
StudyInstanceUID / SeriesInstanceUID, order them (series number, instance number) and put frontal
views first. PNG/JPEG files in a folder form one series of their own, since they carry no UIDs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.inference.errors import ChexnetInputError, EmptyFileError, UnrecognisedFileError
from chexnet.inference.io.dicom_metadata import dicom_metadata
from chexnet.inference.io.dicom_reader import (
    DEFAULT_MAX_PIXELS,
    read_dataset,
    read_dicom,
    refuse_non_image_header,
)
from chexnet.inference.io.image import Image
from chexnet.inference.io.raster_reader import read_raster
from chexnet.inference.io.sniff import FileKind, sniff
from chexnet.inference.scoring.intended_use import FRONTAL_VIEWS

log = logging.getLogger(__name__)



def load_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               min_size: int | None = None) -> Image:
    """Load one DICOM, PNG or JPEG file (recognised by content) as an :class:`Image`.

    ``min_size`` (e.g. :func:`~chexnet.inference.scoring.decode_size.model_min_side` of a model's
    preprocessing) lets JPEG 2000 DICOMs and JPEG files be decoded at a reduced resolution whose
    sides both stay >= ``min_size``: much faster, and what a model that sees 224 x 224 needs.
    The image then has ``decode_scale`` > 1 and ``full_shape``; take its model input with
    :func:`~chexnet.inference.scoring.decode_size.model_crop` (``resize_and_crop`` on a reduced
    image crops a slightly different region). ``None``: full resolution.
    """
    path = Path(path)
    if path.is_dir():
        raise UnrecognisedFileError(path, "is a folder", "use load_studies() for folders")
    try:
        kind = sniff(path)
    except OSError as err:
        raise UnrecognisedFileError(path, f"cannot be read: {err.strerror}",
                                    "check the path and permissions") from err
    if kind is None:
        if path.stat().st_size == 0:
            raise EmptyFileError(path, "the file is empty")
        raise UnrecognisedFileError(path, "is not a DICOM, PNG or JPEG file (by its content)")
    if kind == "dicom":
        return read_dicom(path, max_pixels=max_pixels, min_size=min_size)
    return read_raster(path, kind, max_pixels=max_pixels, min_size=min_size)


@dataclass(frozen=True)
class Instance:
    """One image file of a study, known by its header; pixels are loaded on demand."""

    path: Path
    kind: FileKind
    view_position: str | None = None
    series_number: int | None = None
    instance_number: int | None = None

    @property
    def is_frontal(self) -> bool:
        return self.view_position in FRONTAL_VIEWS

    def load(self, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_size: int | None = None) -> Image:
        return load_image(self.path, max_pixels=max_pixels, min_size=min_size)


@dataclass
class Series:
    uid: str
    number: int | None = None
    instances: list[Instance] = field(default_factory=list)

    @property
    def has_frontal(self) -> bool:
        return any(i.is_frontal for i in self.instances)


@dataclass
class Study:
    uid: str
    series: list[Series] = field(default_factory=list)

    @property
    def instances(self) -> list[Instance]:
        """All instances, frontal series first, then in series/instance order."""
        return [inst for s in self.series for inst in s.instances]

    @property
    def primary(self) -> Instance | None:
        """The instance to show and score first: the first frontal one, else the first one."""
        return next((i for i in self.instances if i.is_frontal), next(iter(self.instances), None))


@dataclass
class ScanResult:
    studies: list[Study]
    skipped: list[ChexnetInputError]


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly, and every file below named folders (sorted, hidden ones skipped)."""
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield p


def scan(paths: Iterable[str | Path]) -> ScanResult:
    """Group files into studies by their headers, without decoding any pixels.

    Files that are not images (or are unreadable) are returned in ``skipped`` with the reason,
    so a folder with a stray text file or a broken instance still opens.
    """
    studies: dict[str, Study] = {}
    series_index: dict[tuple[str, str], Series] = {}
    skipped: list[ChexnetInputError] = []
    for path in iter_files(paths):
        try:
            study_uid, series_uid, inst = _probe(path)
        except ChexnetInputError as err:
            skipped.append(err)
            continue
        study = studies.setdefault(study_uid, Study(uid=study_uid))
        key = (study_uid, series_uid)
        if key not in series_index:
            series_index[key] = Series(uid=series_uid, number=inst.series_number)
            study.series.append(series_index[key])
        series_index[key].instances.append(inst)
    for study in studies.values():
        for s in study.series:
            s.instances.sort(key=lambda i: (not i.is_frontal, _num(i.instance_number),
                                            str(i.path)))
        study.series.sort(key=lambda s: (not s.has_frontal, _num(s.number), s.uid))
    return ScanResult(list(studies.values()), skipped)


def _num(value: int | None) -> int:
    return value if value is not None else 1 << 30


def _probe(path: Path) -> tuple[str, str, Instance]:
    kind = sniff(path) if path.is_file() else None
    if kind is None:
        if path.exists() and path.stat().st_size == 0:
            raise EmptyFileError(path, "the file is empty")
        raise UnrecognisedFileError(path, "is not a DICOM, PNG or JPEG file (by its content)")
    if kind != "dicom":
        folder = f"folder:{path.parent.resolve()}"
        return folder, folder, Instance(path=path, kind=kind)
    ds = read_dataset(path, stop_before_pixels=True)
    refuse_non_image_header(ds, path)
    meta = dicom_metadata(ds, str(ds.get("PhotometricInterpretation", "")))
    study_uid = meta.study_uid or f"file:{path.resolve()}"
    series_uid = meta.series_uid or study_uid
    inst = Instance(path=path, kind=kind, view_position=meta.view_position,
                    series_number=meta.series_number, instance_number=meta.instance_number)
    return study_uid, series_uid, inst
