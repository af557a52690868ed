"""A file's header as rows of text for a metadata panel: (tag, name, value).

This is for the reader's eyes on screen, as any workstation shows it, so it *does* include
patient attributes; it must never be logged or written to reports (those use ImageMetadata,
which holds no PHI). Values are shortened; sequences are summarised by their item count; pixel
data is never read.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
from PIL import Image as PILImage

from chexnet.inference.errors import ChexnetInputError, CorruptFileError
from chexnet.inference.io.sniff import sniff
from chexnet.inference.io.warning_guard import guarded_warnings

MAX_VALUE_CHARS = 200


def header_rows(path: str | Path) -> list[tuple[str, str, str]]:
    """Header rows of a DICOM (top-level data elements, file meta first) or PNG/JPEG file."""
    path = Path(path)
    kind = sniff(path)
    if kind == "dicom":
        return _dicom_rows(path)
    if kind in ("png", "jpeg"):
        return _raster_rows(path)
    raise ChexnetInputError(path, "has no header to show (not DICOM, PNG or JPEG)")


def _dicom_rows(path: Path) -> list[tuple[str, str, str]]:
    try:
        with guarded_warnings():  # a malformed header's warnings are not the loaders' to catch
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as err:
        raise CorruptFileError(path, f"its DICOM header cannot be read ({err})") from err
    rows = []
    elements = list(getattr(ds, "file_meta", []) or []) + list(ds)
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


def _raster_rows(path: Path) -> list[tuple[str, str, str]]:
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
