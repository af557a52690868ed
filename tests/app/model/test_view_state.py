"""The view state: typed fields, one signal each, clamped or validated, silent when unchanged
(the guard that stops a slider and the model from updating each other forever)."""

from __future__ import annotations

import pytest

from chexnet.app.model.view_state import COLOUR_MAPS, ViewState
from chexnet.inference.io.image import Window


def recorder(signal) -> list:
    got: list = []
    signal.connect(got.append)
    return got


def test_defaults():
    s = ViewState()
    assert s.finding is None
    assert s.cam_visible is True
    assert s.threshold == 0.5
    assert s.opacity == 0.45
    assert s.colour_map == "jet"
    assert s.window is None
    assert (s.invert, s.flip_h, s.flip_v, s.rotation) == (False, False, False, 0)


def test_each_field_announces_its_new_value_once():
    s = ViewState()
    threshold = recorder(s.threshold_changed)
    finding = recorder(s.finding_changed)
    window = recorder(s.window_changed)
    opacity = recorder(s.opacity_changed)
    s.threshold = 0.7
    s.threshold = 0.7  # unchanged: no second signal (the update-loop guard)
    s.finding = "Effusion"
    s.finding = "Effusion"
    w = Window(40.0, 400.0, "LINEAR", "manual")
    s.window = w
    s.window = Window(40.0, 400.0, "LINEAR", "manual")  # equal value, another object
    assert threshold == [0.7]
    assert finding == ["Effusion"]
    assert window == [w]
    assert opacity == []  # other fields stay quiet


def test_threshold_and_opacity_are_clamped_to_the_unit_interval():
    s = ViewState()
    got = recorder(s.opacity_changed)
    s.threshold = 1.7
    s.opacity = -0.2
    assert s.threshold == 1.0
    assert s.opacity == 0.0
    s.opacity = -5  # clamps to the same 0.0: nothing new to say
    assert got == [0.0]


def test_rotation_stays_within_a_turn():
    s = ViewState()
    got = recorder(s.rotation_changed)
    s.rotation = 450
    assert s.rotation == 90
    s.rotate_clockwise()
    s.rotate_clockwise()
    s.rotate_clockwise()
    assert s.rotation == 0
    assert got == [90, 180, 270, 0]


def test_an_unknown_colour_map_is_refused_and_nothing_changes():
    s = ViewState()
    got = recorder(s.colour_map_changed)
    with pytest.raises(ValueError, match="unknown colour map 'rainbow'"):
        s.colour_map = "rainbow"
    assert s.colour_map == "jet"
    s.colour_map = COLOUR_MAPS[-1]
    assert got == [COLOUR_MAPS[-1]]


def test_toggles_and_reset_orientation():
    s = ViewState()
    visible = recorder(s.cam_visible_changed)
    s.toggle_cam_visible()
    s.toggle_cam_visible()
    assert visible == [False, True]
    s.toggle_invert()
    s.toggle_flip_h()
    s.toggle_flip_v()
    s.rotation = 270
    assert (s.invert, s.flip_h, s.flip_v, s.rotation) == (True, True, True, 270)
    flips = recorder(s.flip_h_changed)
    s.reset_orientation()
    assert (s.invert, s.flip_h, s.flip_v, s.rotation) == (False, False, False, 0)
    assert flips == [False]
