"""PNG and JPEG input: the NIH release's real PNGs and the modes that occur in the wild."""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

from chexnet.inference import check_intended_use, load_image


def test_nih_png_is_taken_as_is(nih_png):
    image = load_image(nih_png)
    raw = np.asarray(PILImage.open(nih_png).convert("L"))
    np.testing.assert_array_equal(image.display_u8(), raw)
    assert image.metadata.source == "png"
    assert check_intended_use(image).status == "analysed"


def test_rgba_and_l_versions_of_a_radiograph_load_the_same(nih_png, tmp_path):
    grey = PILImage.open(nih_png).convert("L")
    grey.convert("RGBA").save(tmp_path / "rgba.png")
    grey.convert("RGB").save(tmp_path / "rgb.png")
    grey.convert("LA").save(tmp_path / "la.png")
    reference = load_image(nih_png).display_u8()
    for name in ("rgba.png", "rgb.png", "la.png"):
        image = load_image(tmp_path / name)
        np.testing.assert_array_equal(image.display_u8(), reference)
        assert image.warnings == ()  # greyscale stored as colour is not a colour image


def test_nih_rgba_file_in_the_sample_loads(nih_sample):
    """The sample holds a few RGBA files, as the NIH release does."""
    for path in sorted((nih_sample / "images").glob("*.png"))[:60]:
        with PILImage.open(path) as im:
            if im.mode == "RGBA":
                image = load_image(path)
                assert image.stored.ndim == 2
                assert image.stored.dtype == np.uint8
                return
    raise AssertionError("expected an RGBA image among the first 60 of the sample")


def test_sixteen_bit_png_gets_a_percentile_window(tmp_path):
    ramp = np.tile(np.linspace(1000, 40000, 512).astype(np.uint16), (128, 1))
    PILImage.fromarray(ramp).save(tmp_path / "16.png")
    image = load_image(tmp_path / "16.png")
    assert image.stored.dtype == np.uint16
    assert image.metadata.bits_stored == 16
    u8 = image.display_u8()
    assert u8[:, 0].mean() < 5
    assert u8[:, -1].mean() > 250
    assert np.all(np.diff(u8[0].astype(int)) >= 0)  # monotone, no wrap-around


def test_a_grey_image_with_a_little_colour_is_converted_with_a_warning(tmp_path):
    """A radiograph with a coloured annotation: grey, with a warning; a colour picture is not
    analysed (tests/inference/scoring/test_image_sanity.py)."""
    rng = np.random.default_rng(0)
    grey = np.clip(np.linspace(20, 230, 128)[None, :] + rng.normal(0, 8, (128, 128)), 0, 255)
    rgb = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    rgb[5:15, 5:15] = (220, 30, 30)  # a red marker, 0.6% of the pixels
    PILImage.fromarray(rgb).save(tmp_path / "colour.png")
    image = load_image(tmp_path / "colour.png")
    assert image.stored.ndim == 2
    assert 0 < image.metadata.colour_fraction < 0.02
    decision = check_intended_use(image)
    assert decision.status == "analysed_with_warnings"
    assert any("colour" in w for w in decision.warnings)


def test_suffix_does_not_matter(nih_png, tmp_path):
    disguised = tmp_path / "image.dcm"
    disguised.write_bytes(nih_png.read_bytes())
    assert load_image(disguised).metadata.source == "png"
