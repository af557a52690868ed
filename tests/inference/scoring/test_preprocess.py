"""Model input: sizes, crop box, normalisation (torchvision parity is in tests/training)."""

from __future__ import annotations

import numpy as np
import pytest

from chexnet.inference import PreprocessSpec, load_image, preprocess
from chexnet.inference.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def test_square_image_is_seen_whole():
    x, box = preprocess(np.full((1024, 1024), 128, np.uint8), PreprocessSpec())
    assert x.shape == (3, 224, 224)
    assert x.dtype == np.float32
    assert (box.x0, box.y0, box.x1, box.y1) == (0, 0, 1024, 1024)
    expected = (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x[:, 100, 100], expected, rtol=1e-6)


def test_tall_image_is_centre_cropped_and_the_box_says_so(rg1_uncr):
    image = load_image(rg1_uncr)  # 1841 wide, 1955 tall
    x, box = preprocess(image.display_u8(), PreprocessSpec())
    assert x.shape == (3, 224, 224)
    assert box.x0 == 0
    assert box.x1 == pytest.approx(1841)
    # torchvision's rule: 1841x1955 -> 224x237 (long side truncated), crop rows 6..230
    assert box.y0 == pytest.approx(6 * 1955 / 237)
    assert box.y1 - box.y0 == pytest.approx(224 * 1955 / 237)
    assert not box.covers(image.shape)


def test_resize_then_crop_keeps_content_in_place():
    """A bright square in the top-left quadrant stays in the top-left of the model input."""
    img = np.zeros((400, 300), np.uint8)
    img[100:150, 50:100] = 255
    spec = PreprocessSpec(size=224, resize=256, channels=1, mean=(0.0,), std=(1.0,))
    x, box = preprocess(img, spec)
    ys, xs = np.nonzero(x[0] > 0.5)
    scale = 256 / 300
    assert abs(ys.mean() - (125 * scale - (400 * scale - 224) / 2)) < 2
    assert abs(xs.mean() - (75 * scale - (256 - 224) / 2)) < 2
    assert box.x0 == pytest.approx(16 / scale, abs=0.5)


def test_spec_round_trips_through_a_dict():
    spec = PreprocessSpec(size=320, resize=352, channels=1, mean=(0.5,), std=(0.25,),
                          interpolation="bicubic")
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec


def test_bad_spec_is_refused():
    with pytest.raises(ValueError, match="resize"):
        PreprocessSpec(size=224, resize=200)
    with pytest.raises(ValueError, match="per channel"):
        PreprocessSpec(channels=1)


def test_elongated_image_is_not_resized_whole():
    """A 1 x 60000 strip would resize to 224 x 13 million; only the crop is resampled."""
    import tracemalloc

    strip = np.tile(np.arange(60000, dtype=np.int64) % 256, (1, 1)).astype(np.uint8)
    tracemalloc.start()
    x, box = preprocess(strip, PreprocessSpec())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert x.shape == (3, 224, 224)
    assert peak < 50_000_000
    assert box.x1 - box.x0 == pytest.approx(1.0)
