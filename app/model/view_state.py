"""The view's state in one small model: what is selected and how it is drawn.

Widgets bind both ways to it through ``changed(name)``; setters ignore values equal to the
current one, which is the guard against update loops (a slider that sets the model, which
updates the slider, which would set the model again...), as napari's layer controls and
Slicer's ``updateGUIFromParameterNode`` do.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtCore import QObject, Signal

from chexnet.inference.io.image import Window

COLOUR_MAPS = ("jet", "turbo", "inferno", "viridis", "magma", "plasma")


@dataclass
class _State:
    finding: str | None = None        # whose CAM is shown
    cam_visible: bool = True
    threshold: float = 0.5            # CAM (scaled 0..1) below this is transparent
    opacity: float = 0.45
    colour_map: str = "jet"
    window: Window | None = None      # None: the image's own default
    invert: bool = False
    flip_h: bool = False
    flip_v: bool = False
    rotation: int = 0                 # degrees clockwise, a multiple of 90


class ViewState(QObject):
    """Observable view state. ``changed`` carries the field name that changed."""

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._s = _State()

    def get(self, name: str):
        return getattr(self._s, name)

    def set(self, name: str, value) -> bool:
        """Set one field; returns whether it changed (and emitted ``changed``)."""
        if name not in _FIELDS:
            raise AttributeError(f"ViewState has no field {name!r}")
        if name in ("threshold", "opacity"):
            value = min(1.0, max(0.0, float(value)))
        elif name == "rotation":
            value = int(value) % 360
        elif name == "colour_map" and value not in COLOUR_MAPS:
            raise ValueError(f"unknown colour map {value!r}; choose from {', '.join(COLOUR_MAPS)}")
        if getattr(self._s, name) == value:
            return False
        setattr(self._s, name, value)
        self.changed.emit(name)
        return True

    def toggle(self, name: str) -> None:
        self.set(name, not self.get(name))

    def reset_orientation(self) -> None:
        for name in ("invert", "flip_h", "flip_v"):
            self.set(name, False)
        self.set("rotation", 0)

    # convenience properties for the frequently read fields
    finding = property(lambda self: self._s.finding)
    threshold = property(lambda self: self._s.threshold)
    opacity = property(lambda self: self._s.opacity)
    cam_visible = property(lambda self: self._s.cam_visible)
    window = property(lambda self: self._s.window)


_FIELDS = {f.name for f in fields(_State)}
