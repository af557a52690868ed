"""Decoding at model resolution (``load_image(..., min_size=...)``) on real images.

The issue's criterion: the model input (the 224 x 224 uint8 crop, before normalisation) from a
reduced decode differs from the full-resolution path's by at most 0.5 grey levels on average,
while far fewer pixels are decoded.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, get_frame
from pydicom.pixels import pixel_array
from pydicom.pixels.utils import get_j2k_parameters
from pydicom.uid import JPEG2000, JPEG2000Lossless

from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.io.j2k import j2k_header, pillow_decode
from chexnet.inference.io.study import load_image
from chexnet.inference.preprocessing import PreprocessSpec, resize_and_crop
from chexnet.inference.scoring.decode_size import model_crop, model_min_side
from tests.conftest import NIH_SAMPLE

from .dicom_factory import make_dicom

NIH = NIH_SAMPLE / "images"
needs_nih = pytest.mark.skipif(not NIH.is_dir(), reason=f"NIH sample not found at {NIH}")
SPEC = PreprocessSpec()  # the bundled model's: resize 224, crop 224
RG1 = get_testdata_file("RG1_J2KR.dcm")


def model_input_difference(path: Path | str) -> tuple[float, object, object]:
    """(mean |reduced - full| of the uint8 model crops, full image, reduced image)."""
    full = load_image(path)
    reduced = load_image(path, min_size=model_min_side(SPEC))
    expected, _ = resize_and_crop(full.display_u8(), SPEC)
    got, _ = model_crop(reduced, SPEC)
    return float(np.abs(got.astype(int) - expected.astype(int)).mean()), full, reduced


def nih_j2k(tmp_path: Path, name: str, syntax=JPEG2000Lossless, window: bool = True) -> Path:
    """An NIH PNG as a 12-bit JPEG 2000 CR DICOM, with a window as a modality writes one (its
    0.5-99.5 percentiles) or without."""
    grey = np.asarray(PILImage.open(NIH / name).convert("L")).astype(np.uint16) * 16
    attrs = {}
    if window:
        lo, hi = np.percentile(grey, [0.5, 99.5])
        attrs = {"WindowCenter": f"{(lo + hi) / 2:.1f}", "WindowWidth": f"{hi - lo:.1f}"}
    path = make_dicom(tmp_path / f"{name}.dcm", grey, bits_stored=12, PixelSpacing=[0.143, 0.143],
                      **attrs)
    ds = pydicom.dcmread(path)
    if syntax == JPEG2000Lossless:
        ds.compress(syntax, encoding_plugin="pylibjpeg")
    else:
        ds.compress(syntax, encoding_plugin="pylibjpeg", j2k_cr=[10])
    ds.save_as(path)
    return path


def lowpass_53(x: np.ndarray, axis: int) -> np.ndarray:
    """Low-pass half of the reversible 5/3 wavelet (ISO 15444-1 F.4.8.2: integer lifting with
    whole-sample symmetric extension): an independent reference for a resolution level."""
    x = np.moveaxis(x.astype(np.int64), axis, 0)
    n = x.shape[0]

    def mirror(i: np.ndarray) -> np.ndarray:
        i = np.abs(i)
        return np.where(i >= n, 2 * (n - 1) - i, i)

    odd, even = np.arange(1, n, 2), np.arange(0, n, 2)
    high = np.zeros_like(x)
    high[odd] = x[odd] - (x[odd - 1] + x[mirror(odd + 1)]) // 2
    low = x[even] + (high[mirror(even - 1)] + high[mirror(even + 1)] + 2) // 4
    return np.moveaxis(low, 0, axis)


def test_rg1_reduced_level_is_the_wavelet_low_band():
    ds = pydicom.dcmread(RG1)
    full = pixel_array(ds, index=0).astype(np.int64)
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    header = j2k_header(frame)
    assert (header.rows, header.cols, header.precision, header.levels) == (1955, 1841, 15, 5)
    level = full - (1 << 14)  # DC level shift of unsigned 15-bit samples
    for r in (1, 2):  # vertical then horizontal, as the standard's 2D_SD
        level = lowpass_53(lowpass_53(level, 0), 1)
        expected = np.clip(level + (1 << 14), 0, (1 << 15) - 1)
        np.testing.assert_array_equal(pillow_decode(frame, r, header), expected)


def jp2_box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def jp2_wrapped(codestream: bytes, *boxes: bytes) -> bytes:
    """``codestream`` in a JP2 file: the signature box, ``boxes``, then the codestream box."""
    return (jp2_box(b"jP  ", b"\r\n\x87\n") + b"".join(boxes)
            + jp2_box(b"jp2c", codestream))


def rg1_frame() -> bytes:
    return get_frame(pydicom.dcmread(RG1).PixelData, 0, number_of_frames=1)


@pytest.mark.parametrize("case", ["raw", "jp2", "jp2_header_past_1024_bytes", "cut_in_siz",
                                  "siz_complete", "junk_before_soc", "noise"])
def test_the_header_reader_finds_what_pydicoms_finds(case):
    """j2k_header replaced pydicom's get_j2k_parameters in the dataset check: it finds the same
    precision and signedness where that finds any, and nothing where that finds none."""
    frame = rg1_frame()
    data = {"raw": frame,
            "jp2": jp2_wrapped(frame, jp2_box(b"ftyp", b"jp2 \0\0\0\0jp2 ")),
            "jp2_header_past_1024_bytes": jp2_wrapped(frame, jp2_box(b"xml ", bytes(1100))),
            "cut_in_siz": frame[:42],
            "siz_complete": frame[:43],
            "junk_before_soc": b"\0\0" + frame,
            "noise": np.random.default_rng(3).bytes(2048)}[case]
    ours, theirs = j2k_header(data), get_j2k_parameters(data[:1024])
    assert (ours is None) == ("precision" not in theirs)
    if ours is not None:
        assert (ours.precision, ours.signed) == (theirs["precision"], theirs["is_signed"])
        assert (ours.rows, ours.cols, ours.components) == (1955, 1841, 1)
        assert ours.levels == (5 if case in ("raw", "jp2") else None)


def test_a_jp2_box_that_cannot_be_walked_has_no_header():
    """A box of length 0 before the codestream (pydicom's reader loops forever on it)."""
    assert j2k_header(jp2_wrapped(rg1_frame(), b"\0\0\0\0ftyp")) is None


def test_rg1_model_input_within_half_a_grey_level():
    diff, full, reduced = model_input_difference(RG1)
    assert reduced.decode_scale == 4.0
    assert reduced.full_shape == full.shape == (1955, 1841)
    assert reduced.shape == (489, 461)
    assert min(reduced.shape) >= model_min_side(SPEC)
    assert reduced.stored.size * 15 < full.stored.size  # 1/16 of the pixels decoded
    assert diff <= 0.5
    # The file's window is resolution-independent and kept as is.
    assert reduced.windows == full.windows
    assert reduced.invert == full.invert


def test_without_min_size_nothing_changes():
    a, b = load_image(RG1), load_image(RG1, min_size=None)
    assert a.decode_scale == b.decode_scale == 1.0
    assert a.full_shape is None
    np.testing.assert_array_equal(a.stored, b.stored)


def test_model_crop_of_a_full_image_is_resize_and_crop():
    image = load_image(RG1)
    crop, box = model_crop(image, SPEC)
    expected, expected_box = resize_and_crop(image.display_u8(), SPEC)
    np.testing.assert_array_equal(crop, expected)
    assert box == expected_box


def test_crop_box_is_in_reduced_pixels_and_maps_to_the_full_one():
    full = load_image(RG1)
    reduced = load_image(RG1, min_size=model_min_side(SPEC))
    _, full_box = resize_and_crop(full.display_u8(), SPEC)
    _, box = model_crop(reduced, SPEC)
    s = reduced.decode_scale
    assert (box.x0 * s, box.y0 * s, box.x1 * s, box.y1 * s) == pytest.approx(
        (full_box.x0, full_box.y0, full_box.x1, full_box.y1))


def test_min_size_larger_than_a_level_keeps_the_level_above():
    reduced = load_image(RG1, min_size=1000)  # 1/2 would be 978 x 921: too small
    assert reduced.decode_scale == 1.0
    assert reduced.shape == (1955, 1841)
    half = load_image(RG1, min_size=900)
    assert half.decode_scale == 2.0
    assert half.shape == (978, 921)


@needs_nih
@pytest.mark.parametrize(("name", "syntax"), [("00000075_000.png", JPEG2000Lossless),
                                              ("00000284_000.png", JPEG2000Lossless),
                                              # the two worst of the first 20 without a window
                                              ("00000442_000.png", JPEG2000Lossless),
                                              ("00000797_000.png", JPEG2000Lossless),
                                              ("00000129_000.png", JPEG2000)])
def test_nih_j2k_model_input_within_half_a_grey_level(tmp_path, name, syntax):
    path = nih_j2k(tmp_path, name, syntax)
    diff, full, reduced = model_input_difference(path)
    assert reduced.decode_scale == 2.0
    assert reduced.shape == (512, 512)
    assert reduced.stored.size * 4 == full.stored.size
    assert diff <= 0.5
    # Pixel spacing is that of the stored pixels.
    assert reduced.metadata.pixel_spacing_mm == pytest.approx((0.286, 0.286))
    assert full.metadata.pixel_spacing_mm == pytest.approx((0.143, 0.143))


@needs_nih
def test_j2k_without_a_window_is_decoded_in_full(tmp_path):
    """Its automatic window comes from pixel statistics, which a reduced level smooths: up to
    1.8 grey levels off at 224 x 224. So it is decoded in full, and looks exactly as without
    min_size."""
    path = nih_j2k(tmp_path, "00000442_000.png", window=False)
    image = load_image(path, min_size=model_min_side(SPEC))
    assert image.decode_scale == 1.0
    assert image.shape == (1024, 1024)
    np.testing.assert_array_equal(image.display_u8(), load_image(path).display_u8())


@needs_nih
def test_jpeg_is_decoded_reduced_by_dct_scaling(tmp_path):
    path = tmp_path / "cxr.jpg"
    PILImage.open(NIH / "00000100_000.png").convert("L").save(path, quality=95)
    diff, full, reduced = model_input_difference(path)
    assert full.shape == (1024, 1024)
    assert reduced.shape == (512, 512)
    assert reduced.decode_scale == 2.0
    assert reduced.full_shape == (1024, 1024)
    assert diff <= 0.5


@needs_nih
def test_png_and_native_dicom_are_read_in_full(tmp_path):
    png = NIH / "00000100_000.png"
    grey = np.asarray(PILImage.open(png).convert("L"))
    native = make_dicom(tmp_path / "native.dcm", grey.astype(np.uint16) * 16, bits_stored=12)
    for path in (png, native):
        image = load_image(path, min_size=model_min_side(SPEC))
        assert image.decode_scale == 1.0
        assert image.shape == (1024, 1024)
        np.testing.assert_array_equal(image.stored, load_image(path).stored)


def outcome(path: Path, min_size: int | None) -> str:
    try:
        load_image(path, min_size=min_size)
    except ChexnetInputError as err:
        return type(err).__name__
    return "loaded"


@pytest.mark.parametrize("damage", ["cut_to_a_third", "no_end_marker", "noise_in_the_middle"])
def test_a_damaged_codestream_is_judged_as_without_min_size(tmp_path, damage):
    """The reduced path never accepts what the full decode refuses (its failures fall back to
    the full decode, which names the problem)."""
    ds = pydicom.dcmread(RG1)
    frame = get_frame(ds.PixelData, 0, number_of_frames=1)
    noise = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    frame = {"cut_to_a_third": frame[:len(frame) // 3],
             "no_end_marker": frame[:-2],
             "noise_in_the_middle": frame[:2000] + noise + frame[7000:]}[damage]
    ds.PixelData = encapsulate([frame + b"\x00" * (len(frame) % 2)])
    path = tmp_path / f"{damage}.dcm"
    ds.save_as(path)
    expected = {"cut_to_a_third": "InconsistentPixelDataError",
                "no_end_marker": "InconsistentPixelDataError",
                "noise_in_the_middle": "loaded"}[damage]  # OpenJPEG decodes it, as pydicom does
    assert outcome(path, None) == expected
    assert outcome(path, model_min_side(SPEC)) == expected


def test_model_min_side_follows_the_card():
    assert model_min_side(SPEC) == 448
    assert model_min_side(PreprocessSpec(size=224, resize=256)) == 512
