"""torchxrayvision's preprocessing reproduced without skimage (centred square, anti-aliased
linear resize), checked against skimage itself on NIH images; and the default path, which every
existing package uses, unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from chexnet.inference import PreprocessSpec, load_image
from chexnet.inference.package.lookup import DEFAULT_MODEL_FILE, bundled_models_dir
from chexnet.inference.preprocessing import (
    XRV_PREPROCESS,
    aa_linear,
    normalise,
    preprocess,
    resize_and_crop,
)
from chexnet.inference.scoring.decode_size import model_crop, model_min_side
from chexnet.inference.scoring.tta import tta_crops


def _skimage_grey(u8: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """torchxrayvision's XRayResizer on its [-1024, 1024] image, mapped back to grey levels."""
    skimage_transform = pytest.importorskip("skimage.transform", reason="dev extra")
    v = (2 * (u8.astype(np.float32) / 255) - 1.0) * 1024
    out = skimage_transform.resize(v[None], (1, *shape), mode="constant", preserve_range=True)
    return (out[0].astype(np.float64) / 1024 + 1) * 255 / 2


@pytest.mark.parametrize("shape", [(224, 224), (300, 170), (1500, 1100)])
def test_aa_linear_matches_skimage_to_the_rounding(nih_sample, shape):
    paths = sorted((nih_sample / "images").glob("*.png"))[:2]
    for path in paths:
        u8 = load_image(path).display_u8()
        diff = np.abs(aa_linear(u8, shape) - _skimage_grey(u8, shape))
        assert diff.max() <= 1e-3, (path.name, diff.max())  # float rounding only


def test_centre_square_is_xrv_geometry_on_odd_shapes():
    rng = np.random.default_rng(0)
    for h, w in ((301, 200), (200, 301), (257, 257), (90, 1000)):
        img = rng.integers(0, 256, (h, w), dtype=np.uint8)
        crop, box = resize_and_crop(img, XRV_PREPROCESS)
        side = min(h, w)  # XRayCenterCrop, transcribed
        sx, sy = w // 2 - side // 2, h // 2 - side // 2
        assert (box.x0, box.y0, box.x1, box.y1) == (sx, sy, sx + side, sy + side)
        want = _skimage_grey(img[sy:sy + side, sx:sx + side], (224, 224))
        assert np.abs(crop - want).max() <= 1e-3
        x, _ = preprocess(img, XRV_PREPROCESS)
        assert x.shape == (1, 224, 224)
        np.testing.assert_allclose(x[0], (2 * crop.astype(float) / 255 - 1) * 1024, atol=1e-3)


def test_tta_none_and_reduced_decode_follow_the_square(rg1_uncr, rg1_j2kr):
    full = load_image(rg1_uncr).display_u8()
    t = tta_crops(full, XRV_PREPROCESS, "none")
    crop, box = resize_and_crop(full, XRV_PREPROCESS)
    assert np.array_equal(t.pixels[0], crop)
    assert t.box == box
    reduced = load_image(rg1_j2kr, min_size=model_min_side(XRV_PREPROCESS))
    assert reduced.is_reduced
    small, small_box = model_crop(reduced, XRV_PREPROCESS)
    scale = reduced.decode_scale
    assert small_box.x0 * scale == pytest.approx(box.x0)
    assert small_box.y1 * scale == pytest.approx(box.y1)
    assert np.mean(np.abs(small.astype(float) - crop)) < 1.5  # grey levels


def test_default_spec_is_unchanged(nih_sample):
    """Cards without the new field read as before: Pillow bilinear resize, then centre crop,
    computed here independently; the default spec writes no new key."""
    spec = PreprocessSpec.from_dict({"size": 224, "resize": 256, "channels": 3})
    assert spec.crop == "resize-centre-crop"
    assert "crop" not in PreprocessSpec().to_dict()
    assert PreprocessSpec.from_dict(XRV_PREPROCESS.to_dict()) == XRV_PREPROCESS
    for path in sorted((nih_sample / "images").glob("*.png"))[:2]:
        u8 = load_image(path).display_u8()
        h, w = u8.shape
        nh, nw = (256, int(256 * w / h)) if h <= w else (int(256 * h / w), 256)
        pil = np.asarray(PILImage.fromarray(u8).resize((nw, nh), PILImage.Resampling.BILINEAR))
        top, left = round((nh - 224) / 2), round((nw - 224) / 2)
        want = pil[top:top + 224, left:left + 224]
        crop, _ = resize_and_crop(u8, spec)
        assert np.array_equal(crop, want)


def test_bundled_model_scores_as_its_independent_input(nih_png):
    from chexnet.inference import Engine

    engine = Engine(bundled_models_dir() / DEFAULT_MODEL_FILE, device="cpu")
    spec = engine.card.preprocess
    assert spec.crop == "resize-centre-crop"
    u8 = load_image(nih_png).display_u8()
    h, w = u8.shape
    nh, nw = (spec.resize, int(spec.resize * w / h)) if h <= w else (
        int(spec.resize * h / w), spec.resize)
    pil = np.asarray(PILImage.fromarray(u8).resize((nw, nh), PILImage.Resampling.BILINEAR))
    top, left = round((nh - spec.size) / 2), round((nw - spec.size) / 2)
    x = normalise(pil[top:top + spec.size, left:left + spec.size], spec)[None]
    want = engine.run(x).probs[0]
    got = engine.predict([load_image(nih_png)], tta="none")[0].probabilities
    assert np.array_equal(got, want)
