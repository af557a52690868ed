"""A file's header as rows of text for a metadata panel: (tag, name, value).

This is for the reader's eyes on screen, as any workstation shows it, so it *does* include
patient attributes; it must never be logged or written to reports (those use ImageMetadata,
which holds no PHI). Values are shortened; sequences are summarised by their item count; pixel
data is never read.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
from PIL import Image as PILImage
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from chexnet.inference.errors import ChexnetInputError, CorruptFileError
from chexnet.inference.io.dicom_header import PIXEL_DATA_TAGS
from chexnet.inference.io.sniff import sniff
from chexnet.inference.io.warning_guard import guarded_warnings

MAX_VALUE_CHARS = 200


def header_rows(path: str | Path) -> list[tuple[str, str, str]]:
    """Header rows of a DICOM (top-level data elements, file meta first) or PNG/JPEG file.

    Reads the file for this alone; a file opened for loading has its rows without reading it
    again (:meth:`~chexnet.inference.io.image_file.ImageFile.header_rows`).
    """
    path = Path(path)
    kind = sniff(path)
    if kind == "dicom":
        return dataset_header_rows(_read_header_leniently(path))
    if kind in ("png", "jpeg"):
        return raster_header_rows(path)
    raise ChexnetInputError(path, "has no header to show (not DICOM, PNG or JPEG)")


def _read_header_leniently(path: Path) -> Dataset:
    try:
        with guarded_warnings():  # a malformed header's warnings are not the loaders' to catch
            warnings.simplefilter("ignore")
            return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as err:
        raise CorruptFileError(path, f"its DICOM header cannot be read ({err})") from err


def dataset_header_rows(ds: Dataset) -> list[tuple[str, str, str]]:
    """Header rows of a DICOM dataset: its file meta, then its top-level data elements before
    the pixel data (the same rows whether it was read with its pixel data or without)."""
    rows = []
    elements = list(getattr(ds, "file_meta", []) or []) + list(_before_pixel_data(ds))
    for elem in elements:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        name = elem.name
        if elem.VR == "SQ":
            value = f"sequence of {len(elem.value)} item(s)"
        elif elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            value = f"<{len(elem.value) if elem.value is not None else 0} bytes>"
        else:
            try:
                value = str(elem.value)
            except Exception as err:  # a malformed value must not hide the rest
                value = f"<unreadable: {err}>"
        if len(value) > MAX_VALUE_CHARS:
            value = value[:MAX_VALUE_CHARS] + "…"
        rows.append((tag, name, value))
    return rows


def _before_pixel_data(ds: Dataset) -> Iterator[DataElement]:
    for elem in ds:
        if elem.tag in PIXEL_DATA_TAGS:
            return
        yield elem


def raster_header_rows(path: Path) -> list[tuple[str, str, str]]:
    """Header rows of a PNG or JPEG file: format, size, mode and Pillow's ``info``."""
    try:
        with PILImage.open(path) as im:
            rows = [("", "Format", str(im.format)), ("", "Size", f"{im.width} x {im.height}"),
                    ("", "Mode", str(im.mode))]
            for key, value in sorted(im.info.items()):
                if isinstance(value, bytes):
                    value = f"<{len(value)} bytes>"
                text = str(value)
                rows.append(("", str(key), text[:MAX_VALUE_CHARS]))
    except Exception as err:
        raise CorruptFileError(path, f"cannot be read as an image ({err})") from err
    return rows
