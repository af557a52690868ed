"""One image file, opened once: recognised by its content and, for a DICOM, its header parsed and
checked. Loading its pixels or showing its header rows then reads nothing of it again.

This is the one path of every flow: :func:`load_image` opens a file and loads it; ``scan()``
opens each file of a folder (for its UIDs and view) and its instances load what it opened; the
viewer's metadata panel shows :meth:`ImageFile.header_rows` of the same opening.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from chexnet.inference.errors import EmptyFileError, UnrecognisedFileError
from chexnet.inference.io.dicom_header import DicomHeader, read_dicom_header
from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS, image_from_header
from chexnet.inference.io.file_guard import guarded_file
from chexnet.inference.io.header_rows import dataset_header_rows, header_rows, raster_header_rows
from chexnet.inference.io.image import Image
from chexnet.inference.io.raster_reader import read_raster
from chexnet.inference.io.sniff import HEAD_BYTES, FileKind, sniff_bytes


@dataclass(frozen=True)
class ImageFile:
    """A file chexnet reads, as :func:`open_image_file` found it: its ``kind`` (by content) and,
    for a DICOM, its parsed header (``dicom``: patient data, so not in the repr)."""

    path: Path
    kind: FileKind
    dicom: DicomHeader | None = field(default=None, repr=False, compare=False)
    #: What the file readers said when it was opened, in chexnet's words
    #: (:mod:`.file_guard`): the warnings a load of the file adds to its result.
    notes: tuple[str, ...] = ()

    def load(self, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_size: int | None = None) -> Image:
        """The file's image, as :func:`load_image` gives it. A DICOM's header is not parsed again:
        only the rest of the file (its pixel data) is read. A file changed since it was opened is
        opened afresh. Only named errors are raised (:mod:`.file_guard`); what the file
        readers said about the file is among the image's warnings."""
        if self.dicom is not None and not self.dicom.is_current():
            return load_image(self.path, max_pixels=max_pixels, min_size=min_size)
        with guarded_file(self.path) as notes:
            image = self._load(max_pixels, min_size)
        said = tuple(n for n in dict.fromkeys((*self.notes, *notes.notes))
                     if n not in image.warnings)
        return replace(image, warnings=image.warnings + said) if said else image

    def header_rows(self) -> list[tuple[str, str, str]]:
        """Header rows for a metadata panel (see :mod:`.header_rows`; patient data included:
        never log them). A DICOM's come from the header parsed when the file was opened."""
        if self.dicom is not None:
            return dataset_header_rows(self.dicom.dataset)
        if self.kind == "dicom":  # made by hand, without its header
            return header_rows(self.path)
        return raster_header_rows(self.path)

    def _load(self, max_pixels: int, min_size: int | None) -> Image:
        if self.dicom is not None:
            return image_from_header(self.dicom, max_pixels=max_pixels, min_size=min_size)
        if self.kind == "dicom":  # made by hand, without its header
            return load_image(self.path, max_pixels=max_pixels, min_size=min_size)
        return read_raster(self.path, self.kind, max_pixels=max_pixels, min_size=min_size)


def open_image_file(path: str | Path, *, with_pixels: bool = False) -> ImageFile:
    """Recognise a file by its content and, for a DICOM, parse and check its header (up to the
    pixel data; all of it ``with_pixels``, for a load that follows at once): one read of its
    first bytes, one parse. Raises what :func:`load_image` raises for a file that is not an image
    chexnet reads, or whose DICOM header is damaged: named errors only (:mod:`.file_guard`)."""
    path = Path(path)
    with guarded_file(path) as notes:
        opened = _open(path, with_pixels)
    return replace(opened, notes=tuple(notes.notes)) if notes.notes else opened


def _open(path: Path, with_pixels: bool) -> ImageFile:
    if path.is_dir():
        raise UnrecognisedFileError(path, "is a folder", "use load_studies() for folders")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, also when the header is refused
    except OSError as err:
        raise _unreadable(path, err) from err
    with fh:
        try:
            kind = sniff_bytes(fh.read(HEAD_BYTES))
        except OSError as err:
            raise _unreadable(path, err) from err
        if kind == "dicom":
            return ImageFile(path, kind,
                             read_dicom_header(path, opened=fh, with_pixels=with_pixels))
    if kind is None:
        if path.stat().st_size == 0:
            raise EmptyFileError(path, "the file is empty")
        raise UnrecognisedFileError(path, "is not a DICOM, PNG or JPEG file (by its content)")
    return ImageFile(path, kind)


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
    return open_image_file(path, with_pixels=True).load(max_pixels=max_pixels, min_size=min_size)


def _unreadable(path: Path, err: OSError) -> UnrecognisedFileError:
    if path.is_symlink() and not path.exists():
        return UnrecognisedFileError(path, "is a broken link (its target does not exist)",
                                     "check the link, or copy the file itself")
    return UnrecognisedFileError(path, f"cannot be read: {err.strerror}",
                                 "check the path and permissions")
