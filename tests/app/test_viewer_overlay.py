"""Pixels on screen: the heat map appears where the CAM is above the threshold and nowhere
else, never outside the region the model saw, follows the opacity, and invert inverts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from chexnet.inference import load_image
from chexnet.inference.preprocessing import PreprocessSpec, preprocess
from chexnet.inference.render.cam import cam_on_image
from tests.app.conftest import canvas_pixel, open_and_wait, wait_drawn
from tests.tiny_model import reference_outputs


def is_grey(rgb: np.ndarray) -> bool:
    return int(rgb.max()) - int(rgb.min()) <= 3


@pytest.fixture
def wide_png(tmp_path: Path) -> Path:
    """A 400x300 image (wider than tall: the centre crop leaves side margins unseen) with a
    smooth gradient and a bright blob, so the tiny model's CAM varies over the image."""
    yy, xx = np.mgrid[0:300, 0:400]
    img = 60 + 0.2 * xx + 0.1 * yy
    img += 150 * np.exp(-(((xx - 150) / 30.0) ** 2 + ((yy - 90) / 30.0) ** 2))
    path = tmp_path / "wide.png"
    PILImage.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path)
    return path


def expected_heat(path: Path, label_index: int) -> tuple[np.ndarray, object]:
    """The CAM the window should draw, computed from the tiny graph's numpy reference."""
    image = load_image(path)
    x, box = preprocess(image.display_u8(), PreprocessSpec())
    _, cams = reference_outputs(x[None])
    return cam_on_image(cams[0, label_index], box, image.shape), box


def test_overlay_follows_threshold_and_crop_box(qtbot, make_window, wide_png):
    window = make_window()
    open_and_wait(qtbot, window, wide_png)
    pred = window.session.prediction(window.nav.index)
    finding = window.state.finding
    assert finding == pred.top.label  # the top finding is selected on open
    heat, box = expected_heat(wide_png, pred.labels.index(finding))
    inside = np.isfinite(heat)
    hot = np.argwhere(inside & (heat >= 0.75) & (heat <= 0.9))
    cold = np.argwhere(inside & (heat <= 0.15))
    assert len(hot), "the test image must give a CAM with a hot part"
    assert len(cold), "the test image must give a CAM with a cold part"
    # away from the edges of those regions (interpolation on screen)
    hy, hx = hot[len(hot) // 2]
    cy, cx = cold[len(cold) // 2]
    outside_x, outside_y = box.x0 / 2, 150  # left margin: not seen by the model

    window.state.opacity = 0.8
    window.state.threshold = 0.5
    wait_drawn(qtbot, window)
    assert not is_grey(canvas_pixel(window, hx, hy)), "hot CAM region must be coloured"
    assert is_grey(canvas_pixel(window, cx, cy)), "below the threshold must be transparent"
    assert is_grey(canvas_pixel(window, outside_x, outside_y)), "outside the crop box: no colour"

    window.state.threshold = 0.0
    wait_drawn(qtbot, window)
    assert not is_grey(canvas_pixel(window, cx, cy)), "threshold 0 colours everything seen"
    assert is_grey(canvas_pixel(window, outside_x, outside_y)), "never outside the crop box"

    window.state.threshold = 0.95
    wait_drawn(qtbot, window)
    assert is_grey(canvas_pixel(window, hx, hy)), "raising the threshold hides the region"

    window.state.threshold = 0.5
    window.state.cam_visible = False
    wait_drawn(qtbot, window)
    assert is_grey(canvas_pixel(window, hx, hy)), "the toggle hides the heat map"


def test_opacity_blends_toward_the_colour(qtbot, make_window, wide_png):
    window = make_window()
    open_and_wait(qtbot, window, wide_png)
    window.state.threshold = 0.0
    x, y = 200, 150
    window.state.cam_visible = False
    wait_drawn(qtbot, window)
    base = canvas_pixel(window, x, y)
    assert is_grey(base)
    window.state.cam_visible = True
    window.state.opacity = 0.2
    wait_drawn(qtbot, window)
    faint = canvas_pixel(window, x, y)
    window.state.opacity = 1.0
    wait_drawn(qtbot, window)
    solid = canvas_pixel(window, x, y)
    # at opacity a the screen shows base*(1-a) + colour*a, and at a = 1 the colour itself
    predicted = base * 0.8 + solid * 0.2
    assert np.abs(faint - predicted).max() <= 4, (base, faint, solid)
    assert not is_grey(solid)


def test_invert_really_inverts(qtbot, make_window, wide_png):
    window = make_window()
    open_and_wait(qtbot, window, wide_png)
    window.state.cam_visible = False
    wait_drawn(qtbot, window)
    points = [(20, 20), (380, 280), (150, 90)]
    before = [canvas_pixel(window, x, y) for x, y in points]
    window.state.invert = True
    wait_drawn(qtbot, window)
    after = [canvas_pixel(window, x, y) for x, y in points]
    for b, a in zip(before, after, strict=True):
        assert is_grey(b)
        assert is_grey(a)
        assert abs(int(a[0]) - (255 - int(b[0]))) <= 1, (b, a)
    assert before[2][0] > before[0][0] + 50  # the blob is brighter than the corner
