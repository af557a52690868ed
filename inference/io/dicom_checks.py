"""The guards a DICOM file passes before chexnet trusts it.

Each refuses a damaged or hostile file by name (a :class:`ChexnetInputError` subclass whose
message names the file and the remedy) before it can cost memory or time: a decompression bomb,
a value cut short by the end of the file, sequences nested hundreds deep, the structural damage
pydicom only warns about, pixel data whose encoding cannot be known, a JPEG 2000 codestream that
disagrees with its dataset.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from pathlib import Path

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from chexnet.inference.errors import (
    CorruptFileError,
    ImageTooLargeError,
    MissingAttributeError,
)
from chexnet.inference.io.file_guard import note_for, note_library_warning

log = logging.getLogger(__name__)

#: Largest inflated size accepted for the Deflated Explicit VR Little Endian transfer syntax.
DEFAULT_MAX_INFLATED_BYTES = 1 << 30
#: What pydicom raises while parsing a damaged file.
PARSE_ERRORS = (EOFError, OSError, ValueError, KeyError, TypeError, IndexError, OverflowError,
                MemoryError, NotImplementedError, AttributeError, struct.error, zlib.error)
# pydicom reports these structural problems as warnings; chexnet treats them as corruption.
_CORRUPTION_WARNINGS = ("end of file", "before delimiter", "unexpected end", "truncated")
#: Deepest sequence nesting accepted (no real radiograph nests more than a few levels).
MAX_SEQUENCE_DEPTH = 32


def raise_on_corruption_warnings(path: Path, caught: list[warnings.WarningMessage]) -> None:
    """Refuse the file if pydicom warned of structural damage while reading it; the other
    warnings become notes of the file's guard (in chexnet's words: their text can quote
    header values)."""
    for w in caught:
        text = str(w.message)
        if any(s in text.lower() for s in _CORRUPTION_WARNINGS):
            raise CorruptFileError(path, f"the DICOM structure is damaged ({note_for(text)})")
        note_library_warning(text)


def file_transfer_syntax(path: Path) -> str | None:
    """The transfer syntax named in the file meta of a file with a preamble (None if unreadable:
    the parse then reports the damage)."""
    try:
        return read_file_meta_info(path).get("TransferSyntaxUID")
    except (InvalidDicomError, *PARSE_ERRORS):
        return None


def check_inflated_size(path: Path, cap: int) -> None:
    """Inflate the deflated stream in chunks, counting, and refuse it past ``cap`` (a zip bomb).

    Runs before the parse: pydicom inflates the whole body in memory.
    """
    with open(path, "rb") as fh:
        raw = fh.read()
    start = raw.find(b"DICM") + 4
    # Skip the (explicit VR little endian) file meta group; the deflated body follows it.
    offset = start + 12 + int.from_bytes(raw[start + 8:start + 12], "little")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    data = raw[offset:]
    try:
        while not inflater.eof:  # bytes after the end of the stream (padding) are ignored
            chunk = inflater.decompress(data, 1 << 20)
            total += len(chunk)
            if total > cap:
                raise ImageTooLargeError(path, f"deflated data inflates past {cap:,} bytes",
                                         "the file is a decompression bomb or is far too large")
            data = inflater.unconsumed_tail
            if not chunk:
                break  # input used up before the end of the stream: the parse reports it
    except zlib.error as err:
        raise CorruptFileError(path, "the deflated data is damaged") from err


def check_not_truncated(path: Path, ds: Dataset) -> None:
    """pydicom 3 silently keeps a value cut short by the end of the file: refuse it. (An element
    header cut short is dropped silently too; an image then lacks its pixel data, see
    :func:`~chexnet.inference.io.dicom_reader.image_from_dataset`.)"""
    if len(ds) == 0:
        raise CorruptFileError(path, "no data set after the file meta (the file is truncated)")
    last = ds.get_item(next(reversed(ds.keys())))  # the element read last
    if (isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF
            and last.value is not None and len(last.value) < last.length):
        raise CorruptFileError(path, f"the file is truncated (element {last.tag} has "
                                     f"{len(last.value):,} of {last.length:,} bytes)")


def check_sequence_depth(path: Path, ds: Dataset, depth: int = 0,
                         limit: int = MAX_SEQUENCE_DEPTH) -> None:
    """Refuse absurdly nested sequences. Walks every element (converting it from its raw form,
    which parses sequences of defined length)."""
    if depth > limit:
        raise CorruptFileError(path, f"sequences nested more than {limit} levels deep",
                               "the file is malformed or hostile; do not open it")
    try:
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value:
                    check_sequence_depth(path, item, depth + 1, limit)
    except RecursionError as err:
        raise CorruptFileError(path, "sequences are nested too deeply to be a real image") from err


def resolve_transfer_syntax(ds: Dataset, path: Path, native_bytes: int) -> UID:
    """The transfer syntax of the pixel data: the file meta's, or, when it names none, the
    encoding pydicom detected (only for native pixel data of at least ``native_bytes``; it is
    then written into ``ds.file_meta`` for the decoder). Otherwise the encoding is unknown."""
    tsyntax = ds.file_meta.get("TransferSyntaxUID")
    if tsyntax:
        return UID(tsyntax)
    encapsulated = "PixelData" in ds and ds["PixelData"].is_undefined_length
    if encapsulated or ("PixelData" in ds and len(ds.PixelData) < native_bytes):
        raise MissingAttributeError(
            path, "no Transfer Syntax UID and the pixel data is not native, so its encoding is "
                  "unknown", "add (0002,0010) to the file meta, e.g. with dcmodify")
    # Native pixel data: the encoding pydicom detected while parsing is the transfer syntax.
    implicit = ds.original_encoding[0] if ds.original_encoding else True
    guess = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta.TransferSyntaxUID = guess
    log.info("%s: no transfer syntax in file meta; native pixel data read as %s",
             path.name, guess.name)
    return guess
