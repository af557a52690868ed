"""Window presets remembered by kind, and the window shown under the presets box."""

from __future__ import annotations

import pytest

from chexnet.app.model.window_level import (
    initial_preset,
    preset_kind,
    window_choice,
    window_text,
)
from chexnet.inference.io.image import Window


def test_preset_kinds_round_trip():
    n = 4  # e.g. two file windows, auto, full
    assert [preset_kind(k, n) for k in range(n)] == ["file", "file", "auto", "full"]
    assert [initial_preset(kind, n) for kind in ("file", "auto", "full")] == [0, 2, 3]
    assert initial_preset("something else", n) == 0


def test_window_text():
    assert window_text(None) == "file's own VOI"
    assert window_text(Window(1023.6, 2047.2, "LINEAR", "auto")) == "C 1024 / W 2047"


def test_window_flag_takes_a_kind_or_a_preset_number():
    assert [window_choice(t) for t in ("file", " AUTO", "Full", "1", "5")] == [
        "file", "auto", "full", "1", "5"]
    for bad in ("0", "6", "lung", ""):
        with pytest.raises(ValueError, match="file, auto, full or a preset number 1-5"):
            window_choice(bad)
    n = 3  # a PNG: its default, auto, full
    assert [initial_preset(k, n) for k in ("1", "2", "3")] == [0, 1, 2]
    assert initial_preset("5", n) == 2  # fewer presets than asked: the last one
