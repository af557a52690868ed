"""The view's state in one small model: what is selected and how it is drawn.

Each field is a typed property with its own signal, ``<field>_changed(value)``. Widgets bind
both ways to it; a setter that gets the current value does nothing and emits nothing, which is
the guard against update loops (a slider that sets the model, which updates the slider, which
would set the model again...), as napari's layer controls and Slicer's
``updateGUIFromParameterNode`` do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from PySide6.QtCore import QObject, Signal

from chexnet.inference.io.image import Window

COLOUR_MAPS = ("jet", "turbo", "inferno", "viridis", "magma", "plasma")

T = TypeVar("T")


def unit_interval(value: float) -> float:
    """Threshold and opacity: clamped to [0, 1]."""
    return min(1.0, max(0.0, float(value)))


def quarter_turns(value: int) -> int:
    """Rotation in degrees clockwise, kept in [0, 360)."""
    return int(value) % 360


def known_colour_map(name: str) -> str:
    if name not in COLOUR_MAPS:
        raise ValueError(f"unknown colour map {name!r}; choose from {', '.join(COLOUR_MAPS)}")
    return name


class Field(Generic[T]):
    """One observable field of :class:`ViewState`: a write is first coerced (clamped or
    validated), then stored and announced on ``<name>_changed`` only if it differs."""

    def __init__(self, default: T, coerce: Callable[[Any], T] | None = None) -> None:
        self.default = default
        self.coerce = coerce

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = f"_{name}"
        self.signal = f"{name}_changed"

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Field[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return getattr(obj, self.slot, self.default)

    def __set__(self, obj: object, value: T) -> None:
        if self.coerce is not None:
            value = self.coerce(value)
        if getattr(obj, self.slot, self.default) == value:
            return
        setattr(obj, self.slot, value)
        getattr(obj, self.signal).emit(value)


class ViewState(QObject):
    """Observable view state: assign a field, and its ``<field>_changed`` signal tells the
    widgets bound to it."""

    finding_changed = Signal(object)      # str | None
    cam_visible_changed = Signal(bool)
    threshold_changed = Signal(float)
    opacity_changed = Signal(float)
    colour_map_changed = Signal(str)
    window_changed = Signal(object)       # Window | None
    invert_changed = Signal(bool)
    flip_h_changed = Signal(bool)
    flip_v_changed = Signal(bool)
    rotation_changed = Signal(int)

    finding: Field[str | None] = Field(None)     # whose CAM is shown
    cam_visible: Field[bool] = Field(True, bool)
    threshold: Field[float] = Field(0.5, unit_interval)  # CAM (scaled 0..1) below: transparent
    opacity: Field[float] = Field(0.45, unit_interval)
    colour_map: Field[str] = Field("jet", known_colour_map)
    window: Field[Window | None] = Field(None)   # None: the image's own default
    invert: Field[bool] = Field(False, bool)
    flip_h: Field[bool] = Field(False, bool)
    flip_v: Field[bool] = Field(False, bool)
    rotation: Field[int] = Field(0, quarter_turns)  # degrees clockwise, a multiple of 90

    def toggle_cam_visible(self) -> None:
        self.cam_visible = not self.cam_visible

    def toggle_invert(self) -> None:
        self.invert = not self.invert

    def toggle_flip_h(self) -> None:
        self.flip_h = not self.flip_h

    def toggle_flip_v(self) -> None:
        self.flip_v = not self.flip_v

    def rotate_clockwise(self) -> None:
        self.rotation = self.rotation + 90

    def reset_orientation(self) -> None:
        """Back to the image as stored: not inverted, not flipped, not rotated."""
        self.invert = False
        self.flip_h = False
        self.flip_v = False
        self.rotation = 0
