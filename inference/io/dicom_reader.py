"""Read one DICOM file into an :class:`~chexnet.inference.io.image.Image`, refusing bad input by
name.

Everything that can be checked before decoding is checked before decoding (pixel budget, bit
depths, data length, decoder availability), so a hostile file costs nothing. pydicom and its
pylibjpeg plugins do the parsing and decoding; this module only decides what to trust.
"""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_file_meta_info
from pydicom.pixels import get_decoder, pixel_array
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from chexnet.inference.errors import (
    CorruptFileError,
    DecoderUnavailableError,
    EmptyFileError,
    ImageTooLargeError,
    InconsistentPixelDataError,
    MissingAttributeError,
    NotAnImageError,
    UnrecognisedFileError,
    UnsupportedImageError,
)
from chexnet.inference.io.dicom_luts import file_windows, modality_lut, short, voi_lut
from chexnet.inference.io.dicom_metadata import dicom_metadata
from chexnet.inference.io.image import Image, robust_window
from chexnet.inference.io.j2k import decode_j2k_reduced, is_j2k
from chexnet.inference.io.warning_guard import guarded_warnings

log = logging.getLogger(__name__)

#: Default largest frame (rows x columns x samples) decoded. A 43 cm detector at 100 um is 18.5 MP.
DEFAULT_MAX_PIXELS = 64_000_000
#: Largest inflated size accepted for the Deflated Explicit VR Little Endian transfer syntax.
DEFAULT_MAX_INFLATED_BYTES = 1 << 30

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_REQUIRED = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
             "PhotometricInterpretation")
# What pydicom raises while parsing a damaged file.
_PARSE_ERRORS = (EOFError, OSError, ValueError, KeyError, TypeError, IndexError, OverflowError,
                 MemoryError, NotImplementedError, AttributeError, struct.error, zlib.error)
# pydicom reports these structural problems as warnings; chexnet treats them as corruption.
_CORRUPTION_WARNINGS = ("end of file", "before delimiter", "unexpected end", "truncated")


def read_dicom(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
               min_size: int | None = None) -> Image:
    """Read, validate and decode the first frame of a DICOM image.

    With ``min_size``, a JPEG 2000 frame may be decoded at a reduced resolution level whose
    sides both stay >= ``min_size`` (see :mod:`.reduced_decode`); the image then says so in
    ``decode_scale`` and ``full_shape``. Other encodings are decoded in full.

    Raises
    ------
    ChexnetInputError
        A subclass naming the problem; ``str(err)`` is one line with the file and the remedy.
    """
    path = Path(path)
    ds = read_dataset(path, max_inflated_bytes=max_inflated_bytes)
    return image_from_dataset(ds, path, max_pixels=max_pixels, min_size=min_size)


def read_dataset(path: Path, *, stop_before_pixels: bool = False,
                 max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> Dataset:
    """Parse a DICOM file (header and, unless told otherwise, pixel data) with strict checks."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise CorruptFileError(path, f"cannot be read: {err.strerror}",
                               "check the path and permissions") from err
    if size == 0:
        raise EmptyFileError(path, "the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(132)
    has_preamble = len(head) >= 132 and head[128:132] == b"DICM"
    if has_preamble and _file_transfer_syntax(path) == DeflatedExplicitVRLittleEndian:
        # Before dcmread: pydicom inflates the whole body in memory.
        _check_inflated_size(path, max_inflated_bytes)
    with guarded_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, force=not has_preamble,
                                 stop_before_pixels=stop_before_pixels)
            ds.file_meta  # noqa: B018 - force file meta parsing errors to surface here
        except InvalidDicomError as err:
            raise UnrecognisedFileError(path, "not a DICOM file (no DICM marker)") from err
        except RecursionError as err:
            raise CorruptFileError(path, "sequences are nested too deeply to be a real image",
                                   "the file is malformed or hostile; do not open it") from err
        except _PARSE_ERRORS as err:
            raise CorruptFileError(path, f"the DICOM structure is damaged ({short(err)})") from err
    _raise_on_corruption_warnings(path, caught)
    if not has_preamble and len(ds) == 0:
        raise UnrecognisedFileError(path, "not a DICOM file")
    _check_not_truncated(path, ds)
    _walk_sequences(path, ds)
    return ds


def image_from_dataset(ds: Dataset, path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                       min_size: int | None = None) -> Image:
    """Validate a parsed dataset and decode its first frame into an :class:`Image`."""
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        kind = _object_kind(ds)
        if "Image Storage" in kind:
            raise CorruptFileError(path, f"a {kind} object without pixel data (truncated?)")
        raise NotAnImageError(path, f"holds no pixel data (a {kind}, not an image)")
    missing = [k for k in _REQUIRED if ds.get(k) in (None, "")]
    if missing:
        raise MissingAttributeError(path, f"missing required attribute(s) {', '.join(missing)}")
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    allocated, stored, high = int(ds.BitsAllocated), int(ds.BitsStored), int(ds.HighBit)
    photometric = str(ds.PhotometricInterpretation).strip().upper()
    if rows <= 0 or cols <= 0:
        raise MissingAttributeError(path, f"image size {rows}x{cols} is empty")
    if allocated not in (1, 8, 16, 32, 64) or not 0 < stored <= allocated or high != stored - 1:
        raise InconsistentPixelDataError(
            path, f"bit depths disagree (BitsAllocated {allocated}, BitsStored {stored}, "
                  f"HighBit {high}; HighBit must be BitsStored - 1)")
    if rows * cols * samples > max_pixels:
        raise ImageTooLargeError(path, f"{cols}x{rows} pixels x {samples} samples exceeds the "
                                       f"pixel budget of {max_pixels:,}")
    if photometric == "PALETTE COLOR":
        raise UnsupportedImageError(path, "palette colour image (not a radiograph)")
    tsyntax = _transfer_syntax(ds, path, rows * cols * samples * frames * allocated // 8)
    if not tsyntax.is_transfer_syntax or tsyntax.is_encapsulated:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:  # pydicom knows the syntax but has no decoder for it at all
            decoder = None
        if decoder is None or not decoder.is_available:
            raise DecoderUnavailableError(path, f"no decoder installed for {tsyntax.name}")
        _check_j2k_header(ds, path, tsyntax)
    elif "PixelData" in ds:
        needed = (rows * cols * samples * allocated + 7) // 8
        have = len(ds.PixelData)
        if have < needed * frames:
            raise InconsistentPixelDataError(
                path, f"pixel data too short ({have:,} bytes for {frames} frame(s) of "
                      f"{cols}x{rows}x{allocated} bits: {needed * frames:,} needed)")
    voi, windows = voi_lut(ds, path), file_windows(ds, path)
    reduced = None
    # Only when the display does not depend on pixel statistics: a robust window taken from a
    # reduced decode is narrower (its extremes are smoothed), enough to move the model input
    # by up to 1.8 grey levels on NIH images made JPEG 2000 (0.2-0.3 with the file's window).
    if (min_size and (windows or voi is not None) and samples == 1 and is_j2k(tsyntax)
            and not int(ds.PixelRepresentation)):
        reduced = _decode_reduced(ds, rows, cols, stored, frames, min_size)
    scale = 1
    if reduced is None:
        pixels = _decode_first_frame(ds, path, rows, cols, samples)
    else:
        pixels, scale = reduced
    notes: list[str] = []
    if frames > 1:
        notes.append(f"multi-frame ({frames} frames): only frame 1 analysed")
    if samples > 1 or photometric.startswith(("RGB", "YBR")):
        notes.append(f"colour image ({photometric}): converted to greyscale")
        pixels = _luminance(pixels)
    elif not photometric.startswith("MONOCHROME"):
        raise UnsupportedImageError(path, f"photometric interpretation {photometric}")
    native = not tsyntax.is_compressed
    if pixels.dtype.kind == "u" and stored < pixels.dtype.itemsize * 8 and native:
        # Bits above HighBit in native data are not pixel values (old overlay planes): mask.
        pixels = pixels & np.asarray((1 << stored) - 1, dtype=pixels.dtype)
    elif pixels.dtype.kind == "u" and pixels.size and int(pixels.max()) >= 1 << stored:
        raise InconsistentPixelDataError(
            path, f"decoded values exceed BitsStored {stored} (compressed data and header "
                  "disagree)")
    image = _build_image(ds, path, pixels, photometric, tuple(notes), voi, windows)
    if scale == 1:
        return image
    spacing = image.metadata.pixel_spacing_mm
    if spacing is not None:
        spacing = (spacing[0] * scale, spacing[1] * scale)
    return replace(image, decode_scale=float(scale), full_shape=(rows, cols),
                   metadata=replace(image.metadata, pixel_spacing_mm=spacing))


def _decode_reduced(ds: Dataset, rows: int, cols: int, bits_stored: int, frames: int,
                    min_size: int) -> tuple[np.ndarray, int] | None:
    """(stored values at 1/scale, scale) from a reduced JPEG 2000 decode, or None: decode in
    full (nothing to gain, a case the reduced path does not vouch for, or any failure there)."""
    from pydicom.encaps import get_frame

    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=frames)
    except (ValueError, TypeError, StopIteration):
        return None  # the full decode reports the damage by name
    out = decode_j2k_reduced(frame, min_size, rows=rows, cols=cols, bits_stored=bits_stored)
    if out is None:
        return None
    return out[0], 1 << out[1]


def refuse_non_image_header(ds: Dataset, path: Path) -> None:
    """For a header read without its pixel data: refuse an object that plainly holds no image
    (no Rows and no image SOP class: a structured report, a PDF, a presentation state...)."""
    kind = _object_kind(ds)
    if "Rows" not in ds and "Image Storage" not in kind:
        raise NotAnImageError(path, f"holds no image (a {kind})")


def _object_kind(ds: Dataset) -> str:
    return str(getattr(ds.get("SOPClassUID"), "name", None) or ds.get("Modality") or "object")


def _build_image(ds: Dataset, path: Path, pixels: np.ndarray, photometric: str,
                 notes: tuple[str, ...], voi, windows: tuple) -> Image:
    modality = modality_lut(ds, path)
    if not windows and voi is None:
        sample = pixels[::4, ::4]
        values = sample if modality is None else modality(sample)
        windows = (robust_window(values),)
    presentation = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    # MONOCHROME1 and Presentation LUT Shape INVERSE say the same thing for DX (PS3.3 C.8.11.6):
    # invert once when either says so, never twice.
    invert = photometric == "MONOCHROME1" or presentation == "INVERSE"
    return Image(path=path, stored=pixels, metadata=dicom_metadata(ds, photometric),
                 modality_lut=modality, windows=windows, voi_lut=voi, invert=invert,
                 warnings=notes)


def _transfer_syntax(ds: Dataset, path: Path, native_bytes: int) -> UID:
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


def _decode_first_frame(ds: Dataset, path: Path, rows: int, cols: int, samples: int) -> np.ndarray:
    with guarded_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            arr = pixel_array(ds, index=0, raw=False)
        except (ValueError, RuntimeError, OSError, TypeError, KeyError, AttributeError,
                NotImplementedError, MemoryError) as err:
            raise InconsistentPixelDataError(
                path, f"pixel data cannot be decoded ({short(err)})") from err
    _raise_on_corruption_warnings(path, caught)
    expected = (rows, cols) if samples == 1 else (rows, cols, samples)
    if arr.shape != expected:
        raise InconsistentPixelDataError(
            path, f"decoded image is {arr.shape}, header says {expected}")
    return np.ascontiguousarray(arr)


def _check_j2k_header(ds: Dataset, path: Path, tsyntax: UID) -> None:
    """The JPEG 2000 codestream's own precision and size must agree with BitsStored, Rows and
    Columns (checked before decoding: pydicom silently trusts the codestream, and reshapes a
    codestream of the same pixel count to the dataset's size, scrambling the image)."""
    if "2.4.9" not in str(tsyntax):
        return
    from pydicom.encaps import get_frame
    from pydicom.pixels.utils import get_j2k_parameters

    try:
        frame = get_frame(ds.PixelData, 0, number_of_frames=int(ds.get("NumberOfFrames", 1) or 1))
    except (ValueError, TypeError, StopIteration) as err:
        raise CorruptFileError(path, f"encapsulated pixel data is damaged ({short(err)})") from err
    params = get_j2k_parameters(frame[:1024])
    precision = params.get("precision")
    if precision is None:
        raise CorruptFileError(path, "JPEG 2000 codestream has no readable header")
    if precision != int(ds.BitsStored):
        raise InconsistentPixelDataError(
            path, f"JPEG 2000 header says {precision} bits, the dataset says BitsStored "
                  f"{int(ds.BitsStored)}")
    siz = frame.find(b"\xff\x4f\xff\x51", 0, 1024)  # SOC + SIZ marker, after any JP2 boxes
    if siz >= 0 and len(frame) >= siz + 24:
        xsiz, ysiz, x0, y0 = struct.unpack(">4I", frame[siz + 8:siz + 24])
        rows, cols = int(ds.Rows), int(ds.Columns)
        if (ysiz - y0, xsiz - x0) != (rows, cols):
            raise InconsistentPixelDataError(
                path, f"JPEG 2000 header says {xsiz - x0}x{ysiz - y0} pixels, the dataset says "
                      f"{cols}x{rows} (Columns x Rows)")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    grey = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.rint(grey).astype(rgb.dtype)


def _raise_on_corruption_warnings(path: Path, caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        text = str(w.message)
        if any(s in text.lower() for s in _CORRUPTION_WARNINGS):
            raise CorruptFileError(path, f"the DICOM structure is damaged ({short(text)})")
        log.debug("%s: pydicom: %s", path.name, short(text))


def _file_transfer_syntax(path: Path) -> str | None:
    """The transfer syntax named in the file meta of a file with a preamble (None if unreadable:
    dcmread then reports the damage)."""
    try:
        return read_file_meta_info(path).get("TransferSyntaxUID")
    except (InvalidDicomError, *_PARSE_ERRORS):
        return None


def _check_inflated_size(path: Path, cap: int) -> None:
    """Inflate the deflated stream in chunks, counting, and refuse it past ``cap`` (a zip bomb)."""
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
                break  # input used up before the end of the stream: dcmread reports it
    except zlib.error as err:
        raise CorruptFileError(path, f"the deflated data is damaged ({short(err)})") from err


def _check_not_truncated(path: Path, ds: Dataset) -> None:
    """pydicom 3 silently keeps a value cut short by the end of the file: refuse it. (An element
    header cut short is dropped silently too; an image then lacks its pixel data, see
    :func:`image_from_dataset`.)"""
    if len(ds) == 0:
        raise CorruptFileError(path, "no data set after the file meta (the file is truncated)")
    last = ds.get_item(next(reversed(ds.keys())))  # the element read last
    if (isinstance(last, RawDataElement) and last.length != 0xFFFFFFFF
            and last.value is not None and len(last.value) < last.length):
        raise CorruptFileError(path, f"the file is truncated (element {last.tag} has "
                                     f"{len(last.value):,} of {last.length:,} bytes)")


def _walk_sequences(path: Path, ds: Dataset, depth: int = 0, limit: int = 32) -> None:
    """Refuse absurdly nested sequences (no real radiograph nests more than a few levels)."""
    if depth > limit:
        raise CorruptFileError(path, f"sequences nested more than {limit} levels deep",
                               "the file is malformed or hostile; do not open it")
    try:
        for elem in ds:
            if elem.VR == "SQ":
                for item in elem.value:
                    _walk_sequences(path, item, depth + 1, limit)
    except RecursionError as err:
        raise CorruptFileError(path, "sequences are nested too deeply to be a real image") from err
