"""The heat map the canvas draws: the model's CAM on the image grid, at most HEAT_SIDE pixels
on its long side, uncoloured (NaN) outside the region the model saw."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from chexnet.app.model.heat import HEAT_SIDE, heat_map, heat_shape
from chexnet.inference import Engine, load_image
from chexnet.inference.render.cam import cam_on_image


def test_heat_shape_shrinks_never_grows():
    assert heat_shape((2048, 1024)) == (HEAT_SIDE, HEAT_SIDE // 2)
    assert heat_shape((300, 400)) == (300, 400)
    assert heat_shape((10_000, 3)) == (HEAT_SIDE, 1)
    assert heat_shape((100, 50), side=10) == (10, 5)


@pytest.fixture(scope="module")
def engine(tiny_model) -> Engine:
    return Engine(tiny_model, device="cpu")


def test_heat_map_is_the_cam_on_the_image_small(engine, nih_png):
    image = load_image(nih_png)
    pred = engine.predict([image])[0]
    finding = pred.top.label
    heat = heat_map(pred, finding, image.shape)
    small = heat_shape(image.shape)
    assert heat.values.shape == small
    assert max(small) <= HEAT_SIDE
    box = pred.crop_box
    assert heat.crop == (box.x0, box.y0, box.x1, box.y1)
    np.testing.assert_array_equal(heat.values,
                                  cam_on_image(pred.cam(finding), box, image.shape, small))
    seen = heat.values[np.isfinite(heat.values)]
    assert seen.size
    assert 0.0 <= seen.min() <= seen.max() <= 1.0
    # the same picture as the full-size map, sampled at the small map's pixel centres
    full = cam_on_image(pred.cam(finding), box, image.shape)
    h, w = image.shape
    rows = ((np.arange(small[0]) + 0.5) * h / small[0]).astype(int)
    cols = ((np.arange(small[1]) + 0.5) * w / small[1]).astype(int)
    sampled = full[np.ix_(rows, cols)]
    both = np.isfinite(sampled) & np.isfinite(heat.values)
    assert both.mean() > 0.9
    assert np.abs(sampled[both] - heat.values[both]).mean() < 0.02


def test_nothing_to_draw(engine, nih_png, rg1_uncr, tmp_path):
    image = load_image(nih_png)
    pred = engine.predict([image])[0]
    assert heat_map(None, pred.top.label, image.shape) is None  # no prediction yet
    assert heat_map(pred, None, image.shape) is None  # no finding selected
    ds = pydicom.dcmread(rg1_uncr)
    ds.ViewPosition = "LL"  # a lateral view is reported, not scored
    lateral = tmp_path / "lateral.dcm"
    ds.save_as(lateral)
    lateral_image = load_image(lateral)
    refused = engine.predict([lateral_image])[0]
    assert not refused.analysed
    assert heat_map(refused, pred.top.label, lateral_image.shape) is None
