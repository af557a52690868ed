"""Real radiographs from pydicom-data: the CR chest PA RG1 in three encodings, the extremity RG3."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from chexnet.inference import check_intended_use, load_image
from tests.conftest import pydicom_data_file


def test_rg1_lossless_encodings_decode_to_identical_pixels(rg1_uncr, rg1_j2kr):
    uncompressed = load_image(rg1_uncr)
    j2k = load_image(rg1_j2kr)
    assert uncompressed.shape == (1955, 1841)
    np.testing.assert_array_equal(uncompressed.stored, j2k.stored)
    np.testing.assert_array_equal(uncompressed.display_u8(), j2k.display_u8())


def test_rg1_lossy_j2k_is_close_to_lossless(rg1_uncr, rg1_j2ki):
    a = load_image(rg1_uncr).display_u8().astype(np.int16)
    b = load_image(rg1_j2ki).display_u8().astype(np.int16)
    assert np.abs(a - b).mean() < 1.0


def test_rg1_metadata_and_window_come_from_the_file(rg1_uncr):
    image = load_image(rg1_uncr)
    meta = image.metadata
    assert (meta.modality, meta.view_position, meta.body_part) == ("CR", "PA", "CHEST")
    assert meta.photometric == "MONOCHROME1"
    assert meta.bits_stored == 15
    assert meta.pixel_spacing_mm is None  # the file says 0\0: unknown, not zero
    assert image.invert
    assert (image.default_window.center, image.default_window.width) == (15000.0, 30000.0)
    assert check_intended_use(image).status == "analysed"


def test_display_pipeline_matches_pydicom_float64_reference(rg1_uncr):
    """Our fused lookup table against pydicom's own LUT functions evaluated per pixel."""
    ds = pydicom.dcmread(rg1_uncr)
    ref = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds).astype(np.float64), ds)
    # pydicom's windowing maps to [0, 2**BitsStored - 1]; MONOCHROME1 is dark-is-dense
    ref = 1.0 - ref / (2 ** ds.BitsStored - 1)
    ref_u8 = np.clip(np.rint(ref * 255), 0, 255)
    ours = load_image(rg1_uncr).display_u8().astype(np.float64)
    assert np.abs(ours - ref_u8).max() <= 1.0


def test_monochrome1_is_inverted_so_bone_is_bright(rg1_uncr):
    """In the displayed image the spine (centre column) is brighter than the lungs beside it."""
    img = load_image(rg1_uncr).display_u8().astype(float)
    h, w = img.shape
    band = img[int(0.3 * h):int(0.6 * h)]
    spine = band[:, int(0.47 * w):int(0.53 * w)].mean()
    right_lung = band[:, int(0.2 * w):int(0.3 * w)].mean()
    left_lung = band[:, int(0.7 * w):int(0.8 * w)].mean()
    assert spine > right_lung + 20
    assert spine > left_lung + 20


def test_extremity_is_not_analysed(rg3_uncr):
    decision = check_intended_use(load_image(rg3_uncr))
    assert decision.status == "not_analysed"
    assert any("EXTREMITY" in r for r in decision.reasons)


def test_stored_bit_depth_is_kept_for_window_level(rg1_uncr):
    image = load_image(rg1_uncr)
    assert image.stored.dtype == np.uint16
    assert int(image.stored.max()) < 2 ** 15
    values = image.modality_values()
    assert values.dtype == np.float32
    assert values.max() == image.stored.max()


@pytest.mark.parametrize("name", ["RG1_J2KR.dcm", "RG1_J2KI.dcm"])
def test_same_view_whatever_the_transfer_syntax(name):
    image = load_image(pydicom_data_file(name))
    assert image.metadata.transfer_syntax.startswith("JPEG 2000")
