"""Files and folders -> studies, series and instances.

A folder is read as DICOM headers only (no pixel decoding) to group instances by
StudyInstanceUID / SeriesInstanceUID, order them (series number, instance number) and put frontal
views first. PNG/JPEG files in a folder form one series of their own, since they carry no UIDs.
Each instance keeps its file as opened (:class:`~.image_file.ImageFile`): loading it, or showing
its header rows, parses no header again. (:func:`load_image`, for one file, is defined in
:mod:`.image_file` and importable from here too.)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from chexnet.inference.errors import ChexnetInputError, EmptyFileError, UnrecognisedFileError
from chexnet.inference.io.dicom_header import check_header_structure
from chexnet.inference.io.dicom_metadata import dicom_metadata
from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS, refuse_non_image_header
from chexnet.inference.io.file_guard import guarded_file
from chexnet.inference.io.header_rows import header_rows
from chexnet.inference.io.image import (
    CHEST_BODY_PARTS,
    FRONTAL_VIEWS,
    RADIOGRAPH_MODALITIES,
    Image,
)
from chexnet.inference.io.image_file import ImageFile, load_image, open_image_file
from chexnet.inference.io.sniff import FileKind

# load_image lives in image_file; it is also importable from here, as it always was.
__all__ = ["Instance", "ScanResult", "Series", "Study", "iter_files", "load_image", "scan"]

log = logging.getLogger(__name__)


#: :attr:`Instance.read_rank` values, best first.
FRONTAL_CHEST_RADIOGRAPH, NOT_REFUSED, REFUSED = 0, 1, 2


@dataclass(frozen=True)
class Instance:
    """One image file of a study, known by its header; pixels are loaded on demand.

    ``file`` is the file as ``scan()`` opened it (its DICOM header parsed and checked): loading
    the instance and its header rows read the header from there, not from the file again.
    """

    path: Path
    kind: FileKind
    view_position: str | None = None
    series_number: int | None = None
    instance_number: int | None = None
    file: ImageFile | None = field(default=None, repr=False, compare=False)
    modality: str | None = None
    body_part: str | None = None

    @property
    def is_frontal(self) -> bool:
        return self.view_position in FRONTAL_VIEWS

    @property
    def is_chest_radiograph(self) -> bool:
        """A radiograph of the chest as far as the header says (PNG/JPEG: assumed, as the
        intended-use gate assumes it; a missing modality or body part: assumed too)."""
        return ((self.modality is None or self.modality in RADIOGRAPH_MODALITIES)
                and (self.body_part is None or self.body_part in CHEST_BODY_PARTS))

    @property
    def reads_first(self) -> bool:
        """What the model is for: a frontal chest radiograph."""
        return self.is_frontal and self.is_chest_radiograph

    @property
    def read_rank(self) -> int:
        """Which image to read first, from the header alone: :data:`FRONTAL_CHEST_RADIOGRAPH`,
        :data:`NOT_REFUSED` (nothing in the header says otherwise: a PNG, a chest radiograph
        that does not say its view) or :data:`REFUSED` (another modality, body part or view)."""
        if self.reads_first:
            return FRONTAL_CHEST_RADIOGRAPH
        if self.is_chest_radiograph and (not self.view_position or self.is_frontal):
            return NOT_REFUSED
        return REFUSED

    def load(self, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_size: int | None = None) -> Image:
        if self.file is None:
            return load_image(self.path, max_pixels=max_pixels, min_size=min_size)
        return self.file.load(max_pixels=max_pixels, min_size=min_size)

    def header_rows(self) -> list[tuple[str, str, str]]:
        """Rows for the metadata panel (patient data included: never log them)."""
        return header_rows(self.path) if self.file is None else self.file.header_rows()


def first_to_read(instances: list[Instance]) -> int:
    """Index of the image to show and score first (the lowest :attr:`Instance.read_rank`, the
    first of those); 0 for none."""
    ranks = [inst.read_rank for inst in instances]
    return ranks.index(min(ranks)) if ranks else 0


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
        """The instance to show and score first (:func:`first_to_read`)."""
        instances = self.instances
        return instances[first_to_read(instances)] if instances else None

    @property
    def has_chest_radiograph(self) -> bool:
        return any(i.is_chest_radiograph for i in self.instances)


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
            with guarded_file(path) as notes:
                study_uid, series_uid, inst = _probe(path)
        except ChexnetInputError as err:
            skipped.append(err)
            continue
        if notes.notes and inst.file is not None:
            inst = replace(inst, file=replace(inst.file, notes=tuple(notes.notes)))
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
    # studies with what the model is for come first (a folder's CT does not open before its
    # chest radiographs); otherwise discovery order (sorted() is stable)
    ordered = sorted(studies.values(), key=lambda st: (min(i.read_rank for i in st.instances),
                                                       not st.has_chest_radiograph))
    return ScanResult(ordered, skipped)


def _num(value: int | None) -> int:
    return value if value is not None else 1 << 30


def _probe(path: Path) -> tuple[str, str, Instance]:
    if not path.is_file():  # nothing that is no regular file is opened (a FIFO would block)
        if path.is_symlink() and not path.exists():
            raise UnrecognisedFileError(path, "is a broken link (its target does not exist)",
                                        "check the link, or copy the file itself")
        if path.exists() and path.stat().st_size == 0:
            raise EmptyFileError(path, "the file is empty")
        raise UnrecognisedFileError(path, "is not a DICOM, PNG or JPEG file (by its content)")
    file = open_image_file(path)
    if file.dicom is None:
        folder = f"folder:{path.parent.resolve()}"
        return folder, folder, Instance(path=path, kind=file.kind, file=file)
    check_header_structure(file.dicom)
    ds = file.dicom.dataset
    refuse_non_image_header(ds, path)
    meta = dicom_metadata(ds, str(ds.get("PhotometricInterpretation", "")))
    study_uid = meta.uids.study or f"file:{path.resolve()}"
    series_uid = meta.uids.series or study_uid
    inst = Instance(path=path, kind=file.kind, view_position=meta.view_position,
                    series_number=meta.series_number, instance_number=meta.instance_number,
                    file=file, modality=meta.modality, body_part=meta.body_part)
    return study_uid, series_uid, inst
