"""Read one DICOM file into an :class:`~chexnet.inference.io.image.Image`, refusing bad input by
name.

Everything that can be checked before decoding is checked before decoding (pixel budget, bit
depths, data length, decoder availability), so a hostile file costs nothing. pydicom and its
pylibjpeg plugins do the parsing and decoding; :mod:`.dicom_header` parses a file once (its header
when opened, the rest when loaded), :mod:`.dicom_checks` holds the guards against damaged and
hostile files; this module decides what to trust in a parsed dataset and decodes it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import get_decoder, pixel_array

from chexnet.inference.errors import (
    CorruptFileError,
    DecoderUnavailableError,
    ImageTooLargeError,
    InconsistentPixelDataError,
    MissingAttributeError,
    NotAnImageError,
    UnsupportedImageError,
)
from chexnet.inference.io.dicom_checks import (
    DEFAULT_MAX_INFLATED_BYTES,
    raise_on_corruption_warnings,
    resolve_transfer_syntax,
)
from chexnet.inference.io.dicom_header import (
    DicomHeader,
    check_header_structure,
    read_dicom_header,
    read_full_dataset,
)
from chexnet.inference.io.dicom_luts import file_windows, modality_lut, voi_lut
from chexnet.inference.io.dicom_metadata import dicom_metadata
from chexnet.inference.io.file_guard import library_error_facts
from chexnet.inference.io.image import Image, colour_fraction, robust_window
from chexnet.inference.io.j2k import decode_j2k_reduced, is_j2k
from chexnet.inference.io.pixel_checks import (
    check_first_frame,
    header_int,
)
from chexnet.inference.io.warning_guard import guarded_warnings

log = logging.getLogger(__name__)

#: Default largest frame (rows x columns x samples) decoded. A 43 cm detector at 100 um is 18.5 MP.
DEFAULT_MAX_PIXELS = 64_000_000

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_REQUIRED = ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
             "PhotometricInterpretation")


def read_dicom(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
               min_size: int | None = None) -> Image:
    """Read, validate and decode the first frame of a DICOM image.

    With ``min_size``, a JPEG 2000 frame may be decoded at a reduced resolution level whose
    sides both stay >= ``min_size`` (see :mod:`.j2k`); the image then says so in
    ``decode_scale`` and ``full_shape``. Other encodings are decoded in full.

    Raises
    ------
    ChexnetInputError
        A subclass naming the problem; ``str(err)`` is one line with the file and the remedy.
    """
    header = read_dicom_header(Path(path), max_inflated_bytes=max_inflated_bytes,
                               with_pixels=True)
    return image_from_header(header, max_pixels=max_pixels, min_size=min_size)


def image_from_header(header: DicomHeader, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                      min_size: int | None = None) -> Image:
    """Read the rest of a file whose header was parsed (its pixel data), then validate and decode
    it as :func:`read_dicom` does. The header is not parsed again."""
    return image_from_dataset(read_full_dataset(header), header.path, max_pixels=max_pixels,
                              min_size=min_size)


def read_dataset(path: Path, *, stop_before_pixels: bool = False,
                 max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> Dataset:
    """Parse a DICOM file (header and, unless told otherwise, pixel data) with strict checks."""
    header = read_dicom_header(path, max_inflated_bytes=max_inflated_bytes,
                               with_pixels=not stop_before_pixels)
    if stop_before_pixels:
        check_header_structure(header)
        return header.dataset
    return read_full_dataset(header)


def image_from_dataset(ds: Dataset, path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                       min_size: int | None = None) -> Image:
    """Validate a parsed dataset and decode its first frame into an :class:`Image`."""
    if not any(k in ds for k in _PIXEL_KEYWORDS):
        kind = _object_kind(ds)
        if "Image Storage" in kind:
            raise CorruptFileError(path, f"{kind} object without pixel data (truncated?)")
        raise NotAnImageError(path, f"holds no image ({kind})")  # as refuse_non_image_header
    missing = [k for k in _REQUIRED if ds.get(k) in (None, "")]
    if missing:
        raise MissingAttributeError(path, f"missing required attribute(s) {', '.join(missing)}")
    rows, cols = header_int(ds, "Rows", path), header_int(ds, "Columns", path)
    samples = header_int(ds, "SamplesPerPixel", path, 1)
    frames = header_int(ds, "NumberOfFrames", path, 1)
    allocated, stored, high = (header_int(ds, k, path)
                               for k in ("BitsAllocated", "BitsStored", "HighBit"))
    header_int(ds, "PixelRepresentation", path)
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
    colour_space = photometric.startswith(("RGB", "YBR"))
    if (samples == 3) != colour_space or samples not in (1, 3):
        raise InconsistentPixelDataError(
            path, f"PhotometricInterpretation {photometric} with SamplesPerPixel {samples} "
                  "(a colour image has 3 samples per pixel, a greyscale one 1)")
    tsyntax = resolve_transfer_syntax(ds, path, rows * cols * samples * frames * allocated // 8)
    if not tsyntax.is_transfer_syntax or tsyntax.is_encapsulated:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:  # pydicom knows the syntax but has no decoder for it at all
            decoder = None
        if decoder is None or not decoder.is_available:
            raise DecoderUnavailableError(path, f"no decoder installed for {tsyntax.name}")
        check_first_frame(ds, path, tsyntax)
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
    colour = None
    if samples > 1 or photometric.startswith(("RGB", "YBR")):
        notes.append(f"colour image ({photometric}): converted to greyscale")
        colour = colour_fraction(pixels)
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
    if colour is not None:
        image = replace(image, metadata=replace(image.metadata, colour_fraction=colour))
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
        raise NotAnImageError(path, f"holds no image ({kind})")


def _object_kind(ds: Dataset) -> str:
    """What the object is, with its article: "a Basic Text SR", "an Encapsulated PDF"..."""
    meta = getattr(ds, "file_meta", None)
    sop = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
    name = getattr(sop, "name", None)
    if name == "Media Storage Directory Storage":
        name = "DICOMDIR (a directory of the files of a DICOM disc)"
    kind = str(name or ds.get("Modality") or "DICOM object without a SOP class")
    return f"{'an' if kind[:1].upper() in 'AEIOU' else 'a'} {kind}"


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


def _decode_first_frame(ds: Dataset, path: Path, rows: int, cols: int, samples: int) -> np.ndarray:
    with guarded_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            arr = pixel_array(ds, index=0, raw=False)
        except (ValueError, RuntimeError, OSError, TypeError, KeyError, AttributeError,
                NotImplementedError, MemoryError) as err:
            raise InconsistentPixelDataError(
                path, f"pixel data cannot be decoded ({library_error_facts(err)})") from err
    raise_on_corruption_warnings(path, caught)
    expected = (rows, cols) if samples == 1 else (rows, cols, samples)
    if arr.shape != expected:
        raise InconsistentPixelDataError(
            path, f"decoded image is {arr.shape}, header says {expected}")
    return np.ascontiguousarray(arr)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    grey = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.rint(grey).astype(rgb.dtype)
