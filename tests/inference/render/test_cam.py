"""CAM mapping onto the image, thresholding and blending."""

from __future__ import annotations

import numpy as np
import pytest

from chexnet.inference.preprocessing import CropBox
from chexnet.inference.render.cam import blend, cam_on_image, colourise, jet_lut, normalise_cam


def test_peak_lands_in_the_matching_region_of_the_crop_box():
    cam = np.zeros((7, 7), np.float32)
    cam[1, 5] = 3.0  # row 1, column 5 of the feature map
    box = CropBox(0.0, 57.0, 700.0, 757.0)  # a 700x700 crop of a 700-wide, 814-tall image
    heat = cam_on_image(cam, box, image_shape=(814, 700))
    assert np.isnan(heat[:57]).all()
    assert np.isnan(heat[757:]).all()
    y, x = np.unravel_index(np.nanargmax(heat), heat.shape)
    assert 57 + 100 <= y < 57 + 200
    assert 500 <= x < 600
    assert np.nanmax(heat) == pytest.approx(1.0, abs=0.05)
    assert np.nanmin(heat) >= 0


def test_out_shape_scales_the_box():
    cam = np.arange(49, dtype=np.float32).reshape(7, 7)
    full = cam_on_image(cam, CropBox(0, 100, 1000, 1100), (1200, 1000))
    small = cam_on_image(cam, CropBox(0, 100, 1000, 1100), (1200, 1000), out_shape=(120, 100))
    assert small.shape == (120, 100)
    assert np.isnan(small[:10]).all()
    assert np.isfinite(small[10:110]).all()
    assert abs(np.nanmean(full) - np.nanmean(small)) < 0.02


def test_threshold_makes_weak_cam_transparent():
    heat = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    heat[0, 0] = np.nan
    rgba = colourise(heat, threshold=0.6, opacity=0.4)
    alpha = rgba[..., 3]
    assert (alpha[heat >= 0.6] == 102).all()
    assert (alpha[~(heat >= 0.6)] == 0).all()
    assert alpha[0, 0] == 0


def test_blend_respects_opacity():
    grey = np.full((4, 4), 100, np.uint8)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255
    out = blend(grey, rgba)
    assert (out[:2] == [255, 0, 0]).all()
    assert (out[2:] == 100).all()


def test_jet_goes_from_blue_to_red_and_constant_cam_is_flat():
    lut = jet_lut()
    assert lut[0, 2] > 100
    assert lut[0, 0] == 0
    assert lut[-1, 0] > 100
    assert lut[-1, 2] == 0
    assert (normalise_cam(np.full((7, 7), 5.0)) == 0).all()


def test_bad_slider_values_are_refused():
    with pytest.raises(ValueError, match="threshold"):
        colourise(np.zeros((2, 2)), threshold=1.5)
