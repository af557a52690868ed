"""Window/level arithmetic and the pixel readout: small pure functions the window calls."""

from __future__ import annotations

import numpy as np

from chexnet.app.model.session import LoadedImage
from chexnet.inference.io.image import Image, Window

#: Screen pixels of right-drag that sweep the image's whole value range.
DRAG_PIXELS_PER_RANGE = 500.0


def preset_kind(k: int, n: int) -> str:
    """What preset ``k`` of ``n`` is, for remembering it: the last two are auto and full."""
    return "auto" if k == n - 2 else "full" if k == n - 1 else "file"


#: ``--window``: a kind of preset, or a preset's number as keys 1-5 choose it.
WINDOW_KINDS = ("file", "auto", "full")
WINDOW_NUMBERS = ("1", "2", "3", "4", "5")


def window_choice(text: str) -> str:
    """A ``--window`` value: 'file' (the file's own window or VOI LUT), 'auto' (0.5-99.5
    percentile), 'full' (the whole value range), or a preset number 1-5 (as the keys)."""
    value = text.strip().lower()
    if value not in WINDOW_KINDS + WINDOW_NUMBERS:
        raise ValueError(f"{text!r} is not a window: use file, auto, full or a preset number "
                         f"1-5")
    return value


def initial_preset(kind: str, n: int) -> int:
    """The preset an image of ``n`` presets starts at: a kind (see :func:`window_choice`), or
    preset number ``kind`` (the last one when the image has fewer)."""
    if kind in WINDOW_NUMBERS:
        return min(int(kind), n) - 1
    return {"file": 0, "auto": n - 2, "full": n - 1}.get(kind, 0)


def window_after_drag(loaded: LoadedImage, current: Window | None, dx: float, dy: float
                      ) -> Window:
    """Right-drag: right widens the window, left narrows it; down lowers the centre (brighter
    image), up raises it (darker). The step scales with the image's value range, so 8-bit and
    16-bit images feel the same."""
    lo, hi = loaded.value_range
    span = max(hi - lo, 1.0)
    if current is None:
        image = loaded.image
        current = image.default_window or next(p.window for p in loaded.presets
                                               if p.window is not None)
    step = span / DRAG_PIXELS_PER_RANGE
    width = min(max(current.width + dx * step, 1.0), 2 * span)
    return Window(current.center - dy * step, width, "LINEAR", "manual")


def window_text(window: Window | None) -> str:
    """The window shown under the presets box: centre and width, or the file's own VOI."""
    if window is None:
        return "file's own VOI"
    return f"C {window.center:.0f} / W {window.width:.0f}"


def pixel_readout(image: Image, row: int, col: int) -> str:
    """Position, stored value, modality value and millimetres under the cursor."""
    stored = image.stored[row, col]
    text = f"x {col}  y {row}   stored {stored}"
    if image.modality_lut is not None:
        value = float(np.asarray(image.modality_lut(np.asarray([stored])))[0])
        text += f"   value {value:g}"
    spacing = image.metadata.pixel_spacing_mm
    if spacing:
        text += f"   ({row * spacing[0]:.1f} mm, {col * spacing[1]:.1f} mm)"
    return text
