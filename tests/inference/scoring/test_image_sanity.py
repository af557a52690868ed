"""The image-sanity part of the intended-use gate: blank, non-finite, saturated and colour-picture
inputs are not analysed, with the reason; every NIH sample image still is."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from sklearn.datasets import load_sample_images

from chexnet.inference.io.image_file import load_image
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.image_sanity import MAX_SATURATED, MIN_CONTRAST_LEVELS
from chexnet.inference.scoring.intended_use import check_intended_use
from tests.inference.io.dicom_factory import make_dicom
from tests.inference.io.hostile_files import radiograph_like


def decision_for(path: Path):
    return check_intended_use(load_image(path))


def reasons_of(path: Path) -> str:
    decision = decision_for(path)
    assert not decision.analyse, f"{path.name} was analysed"
    return " | ".join(decision.reasons)


def test_the_radiograph_like_control_is_analysed(tmp_path):
    assert decision_for(make_dicom(tmp_path / "ok.dcm", radiograph_like(),
                                   bits_stored=12)).analyse


@pytest.mark.parametrize("value", [0, 2048, 4095])
def test_a_uniform_image_has_no_contrast(tmp_path, value):
    pixels = np.full((256, 256), value, np.uint16)
    assert "no contrast" in reasons_of(make_dicom(tmp_path / "u.dcm", pixels, bits_stored=12))


def test_near_uniform_noise_has_no_contrast(tmp_path):
    rng = np.random.default_rng(1)
    pixels = (128 + rng.integers(-3, 4, (256, 256))).astype(np.uint8)
    PILImage.fromarray(pixels).save(tmp_path / "flat.png")
    assert "no contrast" in reasons_of(tmp_path / "flat.png")


@pytest.mark.parametrize("slope", ["NaN", "inf", "-inf"])
def test_a_non_finite_rescale_is_named(tmp_path, slope):
    path = make_dicom(tmp_path / "s.dcm", radiograph_like(), bits_stored=12,
                      RescaleSlope=slope, RescaleIntercept="0")
    assert "not finite" in reasons_of(path)


def test_a_rescale_that_overflows_is_named(tmp_path):
    path = make_dicom(tmp_path / "s.dcm", radiograph_like(), bits_stored=12,
                      RescaleSlope="1e308", RescaleIntercept="0")
    assert "not finite" in reasons_of(path)


def test_a_negative_slope_with_the_files_window_leaves_nothing_to_see(tmp_path):
    """Slope -1 moves every value below the file's window: a black image, not scored."""
    path = make_dicom(tmp_path / "s.dcm", radiograph_like(), bits_stored=12,
                      RescaleSlope="-1", RescaleIntercept="0", WindowCenter="2048",
                      WindowWidth="4096")
    assert "no contrast" in reasons_of(path)


@pytest.mark.parametrize("width", ["1e308", "1e30"])
def test_a_window_wider_than_any_value_has_no_contrast(tmp_path, width):
    path = make_dicom(tmp_path / "w.dcm", radiograph_like(), bits_stored=12,
                      WindowCenter="2048", WindowWidth=width)
    assert "no contrast" in reasons_of(path)


def test_a_voi_lut_mapping_everything_to_one_value_has_no_contrast(tmp_path):
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 12])  # LUT Descriptor
    item.add_new(0x00283006, "US", [1000] * 4096)  # LUT Data: every value to 1000
    path = make_dicom(tmp_path / "v.dcm", radiograph_like(), bits_stored=12,
                      VOILUTSequence=Sequence([item]))
    assert "no contrast" in reasons_of(path)


def test_float_pixels_with_some_nan_are_named_with_their_share(tmp_path):
    pixels = radiograph_like().astype(np.float32)
    pixels[:32] = np.nan  # 12.5 % of the rows
    # the image as a Float Pixel Data DICOM gives it: float32 values, no window of its own
    image = load_image(make_dicom(tmp_path / "base.dcm", radiograph_like(), bits_stored=12))
    decision = check_intended_use(replace(image, stored=pixels, windows=()))
    assert not decision.analyse
    assert "12.5% of the pixel values are not finite" in decision.reasons[0]


def test_a_mostly_saturated_image_is_not_analysed(tmp_path):
    pixels = radiograph_like()
    pixels[:, : int(pixels.shape[1] * (MAX_SATURATED + 0.1))] = 0
    path = make_dicom(tmp_path / "sat.dcm", pixels, bits_stored=12, WindowCenter="2000",
                      WindowWidth="3000")
    assert "pure black or white" in reasons_of(path)


def test_colour_photographs_are_not_analysed_but_grey_ones_stored_as_rgb_are_gated_on_pixels(
        tmp_path):
    for i, photo in enumerate(load_sample_images().images):
        PILImage.fromarray(photo).save(tmp_path / f"photo{i}.jpg", quality=90)
        assert "a colour picture" in reasons_of(tmp_path / f"photo{i}.jpg")
        grey = np.asarray(PILImage.fromarray(photo).convert("L"))
        PILImage.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(tmp_path / f"g{i}.png")
        image = load_image(tmp_path / f"g{i}.png")
        assert image.metadata.colour_fraction is None  # grey stored as RGB: plain grey
        # a grey photograph passes the pixel checks: the model's out-of-distribution score is
        # what refuses it (tests/inference/scoring/test_ood*.py)
        assert not any("colour" in r for r in check_intended_use(image).reasons)


def test_every_nih_sample_image_passes_the_pixel_checks(nih_sample):
    files = sorted(nih_sample.rglob("*.png"))
    assert len(files) >= 400
    spreads, refused = [], []
    for path in files:
        image = load_image(path)
        lo, hi = np.percentile(image.display_u8(), (1, 99))
        spreads.append(hi - lo)
        if not check_intended_use(image).analyse:
            refused.append(path.name)
    assert refused == []
    assert min(spreads) > 4 * MIN_CONTRAST_LEVELS  # the threshold is far from real images


@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_noise_is_not_analysed(tmp_path, kind):
    rng = np.random.default_rng(2)
    pixels = (np.clip(rng.normal(128, 40, (512, 512)), 0, 255) if kind == "gaussian"
              else rng.integers(0, 256, (512, 512))).astype(np.uint8)
    PILImage.fromarray(pixels).save(tmp_path / "noise.png")
    assert "looks like noise" in reasons_of(tmp_path / "noise.png")


@pytest.mark.parametrize("damage", ["header byte", "data bytes"])
def test_garbled_jpeg_2000_decodes_are_not_scored(tmp_path, rg1_j2kr, damage):
    """A damaged codestream that still decodes gives streaks, noise or blocks; before the
    pixel checks and the model's out-of-distribution check such images were scored with
    confidence. Either gate may refuse them (noise: the pixel checks; streaks and blocks: the
    bundled model's features)."""
    raw = bytearray(rg1_j2kr.read_bytes())
    start = raw.index(b"\xff\x4f\xff\x51")
    sod = raw.index(b"\xff\x93", start)  # start of the first tile's data
    if damage == "header byte":
        raw[start + 43] ^= 47  # in the image size marker: the decode comes out streaked
    else:
        for at in np.random.default_rng(0).integers(sod + 16, sod + 4000, 40):
            raw[at] ^= 0xFF
    (tmp_path / "garbled.dcm").write_bytes(bytes(raw))
    original = Engine(resolve_model(None), device="cpu").predict([load_image(rg1_j2kr)])[0]
    garbled = Engine(resolve_model(None), device="cpu").predict(
        [load_image(tmp_path / "garbled.dcm")])[0]
    assert original.analysed
    assert garbled.status == "not_analysed", garbled.warnings
