"""Checks of the pixel data against the header that describes it, before it is decoded.

A length that the image size cannot explain is refused before the element is read; a frame whose
codestream is not what the transfer syntax says, or whose JPEG 2000 header disagrees with the
dataset, before it is decoded; an attribute of the image description that is not one whole
number, by name.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.multival import MultiValue
from pydicom.uid import UID

from chexnet.inference.errors import (
    CorruptFileError,
    ImageTooLargeError,
    InconsistentPixelDataError,
    MissingAttributeError,
)
from chexnet.inference.io.file_guard import library_error_facts
from chexnet.inference.io.j2k import is_j2k, j2k_header

#: Largest pixel data element read (all frames: pydicom reads the whole element to decode one).
#: With the decoded frame and its display rendering, a load stays under ~1.5 GB.
MAX_PIXEL_DATA_BYTES = 768 << 20


#: What the first bytes of a frame are for each family of compressed transfer syntaxes.
JPEG_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                           "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
                           "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
J2K_STARTS = (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  ")


def check_first_frame(ds: Dataset, path: Path, tsyntax: UID) -> None:
    """Before decoding compressed pixel data, its first frame (taken from the fragments once):

    * must be what the transfer syntax says: a JPEG (SOI marker) for the JPEG and JPEG-LS
      syntaxes, a JPEG 2000 codestream or JP2 file for the JPEG 2000 ones. A frame labelled
      with the wrong one is refused: pydicom would try the labelled decoder (which fails,
      logging a traceback) and then a fallback that decodes it with other scaling;
    * for JPEG 2000, its own precision and size must agree with BitsStored, Rows and Columns:
      pydicom silently trusts the codestream, and reshapes a codestream of the same pixel count
      to the dataset's size, scrambling the image.
    """
    jpeg, j2k = str(tsyntax) in JPEG_SYNTAXES, is_j2k(tsyntax)
    if not (jpeg or j2k):
        return
    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=header_int(ds, "NumberOfFrames",
                                                                         path, 1))
    except (ValueError, TypeError, StopIteration, KeyError) as err:
        raise CorruptFileError(path, "encapsulated pixel data is damaged "
                                     f"({library_error_facts(err)})") from err
    head = bytes(frame[:12])
    if jpeg and not head.startswith(b"\xff\xd8"):
        held = "JPEG 2000" if head.startswith(J2K_STARTS) else "no JPEG"
        raise InconsistentPixelDataError(
            path, f"the transfer syntax says {tsyntax.name}, the pixel data holds {held} data")
    if not j2k:
        return
    if not head.startswith(J2K_STARTS):
        held = "JPEG" if head.startswith(b"\xff\xd8") else "no JPEG 2000"
        raise InconsistentPixelDataError(
            path, f"the transfer syntax says {tsyntax.name}, the pixel data holds {held} data")
    header = j2k_header(frame)
    if header is None:
        raise CorruptFileError(path, "JPEG 2000 codestream has no readable header")
    if header.precision != int(ds.BitsStored):
        raise InconsistentPixelDataError(
            path, f"JPEG 2000 header says {header.precision} bits, the dataset says BitsStored "
                  f"{int(ds.BitsStored)}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if (header.rows, header.cols) != (rows, cols):
        raise InconsistentPixelDataError(
            path, f"JPEG 2000 header says {header.cols}x{header.rows} pixels, the dataset says "
                  f"{cols}x{rows} (Columns x Rows)")


def expected_pixel_bytes(ds: Dataset) -> tuple[int, int] | None:
    """(bytes of all frames, bytes of one row) of native pixel data as the header describes it,
    or ``None`` when the header's numbers are missing or unusable (the load then names them)."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        allocated = int(ds.BitsAllocated)
    except (AttributeError, TypeError, ValueError, KeyError):
        return None
    if min(rows, cols, samples, frames, allocated) <= 0:
        return None
    row_bits = cols * samples * allocated
    return (rows * row_bits * frames + 7) // 8, (row_bits + 7) // 8


def check_pixel_data_length(path: Path, ds: Dataset, length: int, remaining: int | None,
                            max_bytes: int = MAX_PIXEL_DATA_BYTES) -> None:
    """Refuse, before reading it, a pixel data element whose length the header cannot explain:

    * a defined length past the end of the file (truncated), or over ``max_bytes``;
    * native pixel data a whole row or more longer than Rows x Columns x SamplesPerPixel x
      NumberOfFrames x BitsAllocated (a length that lies, or a wrong image size: read as
      declared, such an image comes out sheared);
    * encapsulated (compressed) data that is more than twice the native size plus 1 MiB (no
      codec makes a radiograph twice its size), or over ``max_bytes``.

    ``remaining``: the file's bytes from the element's start (``None``: unknown, a deflated
    body, whose inflated size was checked already).
    """
    expected = expected_pixel_bytes(ds)
    tsyntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "") or ""))
    if length == 0xFFFFFFFF:  # undefined length: encapsulated fragments up to a delimiter
        size = remaining
        if size is None:
            return
        limit = max_bytes if expected is None else min(max_bytes, 2 * expected[0] + (1 << 20))
        if size > limit:
            raise InconsistentPixelDataError(
                path, f"the compressed pixel data runs to {size:,} bytes; an image of the size "
                      f"in the header needs at most {limit:,}",
                "the file is damaged or hostile; re-export it from the source")
        return
    if remaining is not None and length > remaining:
        raise CorruptFileError(path, f"the file is truncated (the pixel data claims "
                                     f"{length:,} bytes, the file holds {max(remaining, 0):,})")
    if length > max_bytes:
        raise ImageTooLargeError(path, f"the pixel data claims {length:,} bytes, over the "
                                       f"budget of {max_bytes:,}",
                                 "the file is far larger than a radiograph, or its length lies")
    compressed = tsyntax.is_transfer_syntax and tsyntax.is_compressed
    if expected is not None and not compressed and length - expected[0] >= max(expected[1], 2):
        raise InconsistentPixelDataError(
            path, f"the pixel data holds {length:,} bytes; the image size in the header needs "
                  f"{expected[0]:,} (Rows, Columns or NumberOfFrames is wrong, or the length "
                  "lies)")


def header_int(ds: Dataset, keyword: str, path: Path, default: int | None = None) -> int:
    """One integer attribute of the image description, refused by name when it is not one
    whole number (multi-valued, text, out of range); ``default`` when absent or empty."""
    try:
        value = ds.get(keyword)
    except Exception:
        value = UNREADABLE
    if value is None or value == "":
        if default is None:
            raise MissingAttributeError(path, f"missing required attribute {keyword}")
        return default
    try:
        if isinstance(value, MultiValue | list | tuple | bytes):
            raise TypeError
        number = int(value)
        if number != value and not isinstance(value, str):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise InconsistentPixelDataError(
            path, f"{keyword} is not one whole number (it holds "
                  f"{what_it_holds(value)})") from None
    if not 0 <= number < 1 << 31:
        raise InconsistentPixelDataError(path, f"{keyword} is {number}: out of range")
    return number


#: What :func:`header_int` found when pydicom could not convert a value.
UNREADABLE = object()


def what_it_holds(value: object) -> str:
    """A description of a bad value that never repeats it (it could be anything)."""
    if value is UNREADABLE:
        return "a value that cannot be read"
    if isinstance(value, MultiValue | list | tuple):
        return f"{len(value)} values"
    return "text" if isinstance(value, str) else f"a {type(value).__name__}"
