"""Where the reading is: which image of the open studies is shown, with which window preset,
and where the next/previous image or series key goes -- plain Python, no Qt.

The window asks this model where to go and tells it what arrived; it then requests images and
draws. Opening a folder skips images that cannot be read (``auto_advance``) until one is shown
or the reader picks one.
"""

from __future__ import annotations

import numpy as np

from chexnet.app.model.session import Item, LoadedImage, OpenResult, Preset
from chexnet.app.model.window_level import initial_preset, preset_kind
from chexnet.inference.io.image import Window


def primary_index(result: OpenResult) -> int:
    """The item shown first after an open: the first image the model would analyse (a frontal
    chest radiograph, whichever study it is in), else the first image
    (:func:`~chexnet.inference.io.study.first_to_read`)."""
    return result.first if 0 <= result.first < len(result.items) else 0


def series_starts(items: list[Item]) -> list[int]:
    """Index of the first item of each series, in reading order."""
    return [i for i, item in enumerate(items)
            if i == 0 or (item.study_index, item.series_index)
            != (items[i - 1].study_index, items[i - 1].series_index)]


class Navigation:
    """The shown image (``index``, ``loaded`` once decoded) and its window preset."""

    def __init__(self) -> None:
        self.index = -1
        self.loaded: LoadedImage | None = None
        self.preset_index: int | None = None  # None: a window of the reader's own (right-drag)
        self.auto_advance = True

    def reset(self) -> None:
        """A new open: nothing shown; unreadable images are skipped until one is shown."""
        self.index, self.loaded, self.preset_index = -1, None, None
        self.auto_advance = True

    # --- moving -------------------------------------------------------------------------------
    def go_to(self, index: int, count: int) -> bool:
        """Make ``index`` (of ``count`` items) the shown one; False if there is no such item."""
        if not 0 <= index < count:
            return False
        self.index = index
        return True

    def choose(self, index: int, count: int) -> bool:
        """The reader picked an image: no more automatic skipping of unreadable ones."""
        self.auto_advance = False
        return self.go_to(index, count)

    def step_image(self, delta: int, count: int) -> int | None:
        """The image ``delta`` away (clamped to the study), or None when nothing is open."""
        self.auto_advance = False
        if not count:
            return None
        return min(max(self.index + delta, 0), count - 1)

    def step_series(self, delta: int, items: list[Item]) -> int | None:
        """The first image of the series ``delta`` away (clamped), or None."""
        if not items or self.index < 0:
            return None
        here_key = (items[self.index].study_index, items[self.index].series_index)
        starts = series_starts(items)
        here = max(i for i, s in enumerate(starts)
                   if (items[s].study_index, items[s].series_index) <= here_key)
        return starts[min(max(here + delta, 0), len(starts) - 1)]

    def after_failure(self, count: int) -> int | None:
        """The image to try after the shown one failed to load, while still opening."""
        if self.auto_advance and self.index + 1 < count:
            return self.index + 1
        return None

    # --- showing -------------------------------------------------------------------------------
    def arrived(self, loaded: LoadedImage, preferred: str) -> bool:
        """The shown image is decoded: it starts at the ``preferred`` preset ('file', 'auto',
        'full', or a preset number '1'-'5'). True if it is the first image since the open."""
        first = self.loaded is None
        self.auto_advance = False
        self.loaded = loaded
        self.preset_index = initial_preset(preferred, len(loaded.presets))
        return first

    @property
    def presets(self) -> list[Preset]:
        return [] if self.loaded is None else self.loaded.presets

    @property
    def preset(self) -> Preset | None:
        """The current preset, None while the window is the reader's own."""
        return None if self.preset_index is None else self.presets[self.preset_index]

    def choose_preset(self, k: int) -> Preset | None:
        """Preset ``k`` of the shown image (keys 1-5, the presets box), or None if none."""
        if not 0 <= k < len(self.presets):
            return None
        self.preset_index = k
        return self.presets[k]

    def leave_presets(self) -> None:
        """The reader set a window by hand: no preset is current."""
        self.preset_index = None

    @property
    def preset_kind(self) -> str | None:
        """What the current preset is, to remember for the next image ('file'/'auto'/'full')."""
        if self.preset_index is None:
            return None
        return preset_kind(self.preset_index, len(self.presets))

    def display(self, window: Window | None) -> np.ndarray:
        """The shown image's 8-bit pixels under ``window``. A preset's pixels are cached on the
        image; a window dragged by hand is not (it changes on every mouse move)."""
        if self.loaded is None:
            raise ValueError("no image is shown")
        cache = self.preset is not None and self.preset.window == window
        return self.loaded.image.display_u8(window, cache=cache)
