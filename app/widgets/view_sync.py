"""Synchronised zoom and pan between two image canvases (the current image and its prior).

The two canvases differ in size (the prior pane is narrower than the central canvas) and the
two images may differ in size, so the views are matched *relative to each image*, not in
pixels: the same point of the image (as a fraction of its width and height) at the centre, and
the same zoom relative to each canvas's fit. Equal images in equal canvases therefore get equal
view ranges. pyqtgraph's own ``setXLink``/``setYLink`` link absolute view coordinates, which
would show a different part of a prior of another size, hence this small link.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from PySide6.QtCore import QObject, QRectF

from chexnet.app.widgets.canvas import ImageCanvas


@dataclass(frozen=True)
class Placement:
    """What a canvas shows: the view's centre as fractions of the image's extent, and the zoom
    relative to fitting the whole image (1: fit, 2: twice as large)."""

    fx: float
    fy: float
    zoom: float


def _viewport(canvas: ImageCanvas) -> tuple[float, float]:
    size = canvas.view.size()
    return float(size.width()), float(size.height())


def placement(canvas: ImageCanvas) -> Placement | None:
    """Where ``canvas`` looks now (None with no image or before it is laid out)."""
    image, (vw, vh) = canvas.image_rect(), _viewport(canvas)
    if image is None or vw <= 0 or vh <= 0 or image.width() <= 0 or image.height() <= 0:
        return None
    shown = canvas.view.viewRect()
    scale = shown.width() / vw  # view units per screen pixel
    fit = max(image.width() / vw, image.height() / vh)
    centre = shown.center()
    return Placement((centre.x() - image.left()) / image.width(),
                     (centre.y() - image.top()) / image.height(), fit / scale)


def place(canvas: ImageCanvas, where: Placement) -> None:
    """Show ``where`` on ``canvas`` (nothing with no image or before it is laid out)."""
    image, (vw, vh) = canvas.image_rect(), _viewport(canvas)
    if image is None or vw <= 0 or vh <= 0 or where.zoom <= 0:
        return
    scale = max(image.width() / vw, image.height() / vh) / where.zoom
    cx = image.left() + where.fx * image.width()
    cy = image.top() + where.fy * image.height()
    w, h = scale * vw, scale * vh
    canvas.view.setRange(QRectF(cx - w / 2, cy - h / 2, w, h), padding=0)


class ViewSync(QObject):
    """Keeps canvas ``b`` showing what ``a`` shows and the other way round, while ``enabled``.
    A change made while following the other is not passed back (the loop guard)."""

    def __init__(self, a: ImageCanvas, b: ImageCanvas, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.a, self.b = a, b
        self.enabled = True
        self._following = False
        a.view.sigRangeChanged.connect(lambda *_: self._follow(a, b))
        b.view.sigRangeChanged.connect(lambda *_: self._follow(b, a))

    def set_enabled(self, enabled: bool) -> None:
        """On: the prior (``b``) jumps to what the current image (``a``) shows."""
        self.enabled = bool(enabled)
        self.align()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Changes made inside (a new prior fitted, re-oriented) are not passed on."""
        was, self._following = self._following, True
        try:
            yield
        finally:
            self._following = was

    def align(self) -> None:
        """``b`` shows what ``a`` shows (a new prior, or sync just turned on)."""
        self._follow(self.a, self.b)

    def _follow(self, leader: ImageCanvas, follower: ImageCanvas) -> None:
        if not self.enabled or self._following or not follower.isVisible():
            return
        where = placement(leader)
        if where is None:
            return
        self._following = True
        try:
            place(follower, where)
        finally:
            self._following = False
