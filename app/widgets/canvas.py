"""The image canvas: a pyqtgraph ViewBox with the radiograph, the CAM overlay and the outline
of the region the model saw.

Layers (pyqtgraph ``ImageItem`` docs): the base image is 8-bit display values with fixed levels
0..255 and a grey look-up table (inverting swaps the table, no pixel work); the heat map is a
second ``ImageItem`` of floats in [0, 1] with its own colour table and fixed levels, where NaN
renders transparent -- that is how the threshold hides the weak part of a CAM and how the
region outside the crop box stays uncoloured. Opacity is the item's opacity. Orientation
(flips, rotation) is one ``QTransform`` applied to every layer, so the layers never disagree.

Mouse: left-drag pans, the wheel zooms (pyqtgraph), right-drag is window/level (emitted as
screen-pixel deltas; the window decides what a pixel of drag means).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen, QTransform
from PySide6.QtWidgets import QGraphicsRectItem

from chexnet.inference.render.cam import jet_lut

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

GREY = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
GREY_INVERTED = GREY[::-1].copy()


def colour_table(name: str) -> np.ndarray:
    """A 256 x 3 uint8 table: ``jet`` as in the CheXNet figures, others from pyqtgraph."""
    if name == "jet":
        return jet_lut()
    return pg.colormap.get(name).getLookupTable(nPts=256, alpha=False)


def orientation(shape: tuple[int, int], flip_h: bool, flip_v: bool, rotation: int) -> QTransform:
    """Image coordinates -> view coordinates: flips then a clockwise rotation about the centre."""
    h, w = shape
    t = QTransform()
    t.translate(-w / 2.0, -h / 2.0)
    t *= QTransform.fromScale(-1.0 if flip_h else 1.0, -1.0 if flip_v else 1.0)
    rot = QTransform()
    rot.rotate(rotation)  # y points down, so positive angles turn clockwise on screen
    t *= rot
    t *= QTransform.fromTranslate(w / 2.0, h / 2.0)
    return t


class _WindowLevelViewBox(pg.ViewBox):
    window_drag = Signal(float, float, bool)  # dx, dy (screen pixels), finished

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_drag.emit(float(delta.x()), float(delta.y()), bool(ev.isFinish()))
            return
        super().mouseDragEvent(ev, axis)


class ImageCanvas(pg.GraphicsView):
    """Shows one image with an optional heat map; emits what is under the cursor."""

    cursor_moved = Signal(object)  # (row, col) in image pixels, or None outside the image
    window_drag = Signal(float, float, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setBackground("k")
        self.view = _WindowLevelViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.window_drag.connect(self.window_drag)
        self.setCentralItem(self.view)
        # No autoDownsample: its block mean costs ~0.5 s per new 2000x2000 image on the GUI
        # thread, while Qt draws the full image scaled in ~3 ms (benchmarks/bench_viewer.py).
        self.base = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(10)
        self.outline = QGraphicsRectItem()
        pen = QPen(QColor(255, 215, 0))
        pen.setCosmetic(True)
        pen.setWidthF(1.5)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.outline.setPen(pen)
        self.outline.setZValue(20)
        for item in (self.base, self.overlay, self.outline):
            self.view.addItem(item)
        self.overlay.setVisible(False)
        self.outline.setVisible(False)
        self._shape: tuple[int, int] | None = None
        self._heat: np.ndarray | None = None
        self._orient = QTransform()
        self._threshold = 0.5
        self._heat_enabled = True
        self._lut = colour_table("jet")
        self._cursor_scene: QPointF | None = None  # where the mouse last was, in the scene

    # --- base image -------------------------------------------------------------------------
    def set_image(self, display_u8: np.ndarray | None, *, fit: bool = False) -> None:
        if display_u8 is None:
            self.base.clear()
            self.clear_heat()
            self._shape = None
            self.cursor_moved.emit(None)
            return
        new_shape = tuple(display_u8.shape[:2])
        self.base.setImage(display_u8, levels=(0, 255), autoLevels=False)
        if new_shape != self._shape:
            self._shape = new_shape
            self._apply_transforms()
            fit = True
        if fit:
            self.fit()

    def set_inverted(self, inverted: bool) -> None:
        self.base.setLookupTable(GREY_INVERTED if inverted else GREY)

    def set_orientation(self, flip_h: bool, flip_v: bool, rotation: int) -> None:
        if self._shape is None:
            return
        self._orient = orientation(self._shape, flip_h, flip_v, rotation)
        self._apply_transforms()
        self.fit()

    # --- heat map ---------------------------------------------------------------------------
    def set_heat(self, heat: np.ndarray | None, crop: tuple[float, float, float, float] | None
                 ) -> None:
        """``heat``: float [h, w] in [0, 1], NaN where the model saw nothing, covering the whole
        image (any resolution: it is stretched onto the image). ``crop``: x0, y0, x1, y1 of the
        region the model saw, in image pixels, outlined."""
        self._heat = heat
        if heat is None:
            self.clear_heat()
            return
        if crop is not None:
            x0, y0, x1, y1 = crop
            self.outline.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.outline.setVisible(crop is not None)
        self._apply_transforms()
        self._render_heat()
        self.overlay.setVisible(self._heat_enabled)

    def clear_heat(self) -> None:
        self._heat = None
        self.overlay.clear()
        self.overlay.setVisible(False)
        self.outline.setVisible(False)

    def set_threshold(self, threshold: float) -> None:
        self._threshold = float(threshold)
        self._render_heat()

    def set_opacity(self, opacity: float) -> None:
        self.overlay.setOpacity(float(opacity))

    def set_colour_map(self, name: str) -> None:
        self._lut = colour_table(name)
        self.overlay.setLookupTable(self._lut)

    def set_heat_visible(self, visible: bool) -> None:
        self._heat_enabled = bool(visible)
        self.overlay.setVisible(self._heat_enabled and self._heat is not None)

    def _render_heat(self) -> None:
        if self._heat is None:
            return
        with np.errstate(invalid="ignore"):
            shown = np.where(self._heat >= self._threshold, self._heat, np.nan).astype(np.float32)
        self.overlay.setImage(shown, levels=(0.0, 1.0), autoLevels=False, lut=self._lut)

    # --- view -------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int] | None:
        """The shown image's (rows, columns), None when nothing is shown."""
        return self._shape

    def image_rect(self) -> QRectF | None:
        """Where the oriented image lies in view coordinates (None when nothing is shown)."""
        if self._shape is None:
            return None
        return self.base.mapRectToParent(self.base.boundingRect())

    def fit(self) -> None:
        if self._shape is not None:
            self.view.autoRange(padding=0.01)

    def zoom(self, factor: float) -> None:
        """Zoom in (factor > 1) or out about the view's centre."""
        self.view.scaleBy((1.0 / factor, 1.0 / factor))

    def actual_pixels(self) -> None:
        """One image pixel per screen pixel, centred on what is shown now."""
        rect = self.view.viewRect()
        size = self.view.size()
        if size.width() <= 0:
            return
        current = rect.width() / size.width()  # image pixels per screen pixel
        self.zoom(current)

    def toggle_actual_pixels(self) -> None:
        """Key Z: actual pixels, or back to fit when already there."""
        rect, size = self.view.viewRect(), self.view.size()
        if size.width() > 0 and abs(rect.width() / size.width() - 1.0) < 0.02:
            self.fit()
        else:
            self.actual_pixels()

    def _apply_transforms(self) -> None:
        self.base.setTransform(self._orient)
        self.outline.setTransform(self._orient)
        if self._heat is not None and self._shape is not None:
            hh, hw = self._heat.shape
            h, w = self._shape
            self.overlay.setTransform(QTransform.fromScale(w / hw, h / hh) * self._orient)

    def mouseMoveEvent(self, event) -> None:
        """Every move updates the readout. Not the scene's ``sigMouseMoved``: pyqtgraph drops
        a move that comes within 10 ms of the previous one (``mouseRateLimit``), so the last
        position of a quick movement could be lost and the readout left stale."""
        super().mouseMoveEvent(event)
        self._mouse_moved(self.mapToScene(event.position().toPoint()))

    def leaveEvent(self, event) -> None:
        """The mouse left the canvas: nothing is under it any more."""
        self._cursor_scene = None
        self.cursor_moved.emit(None)
        super().leaveEvent(event)

    def refresh_cursor(self) -> None:
        """Say again what is under the cursor: another image is shown under a mouse that did
        not move (None when no image is shown or the mouse is off it)."""
        if self._cursor_scene is None or self._shape is None:
            self.cursor_moved.emit(None)
        else:
            self._mouse_moved(self._cursor_scene)

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        self._cursor_scene = QPointF(scene_pos)
        if self._shape is None:
            return
        p = self.base.mapFromScene(scene_pos)
        row, col = int(np.floor(p.y())), int(np.floor(p.x()))
        h, w = self._shape
        self.cursor_moved.emit((row, col) if 0 <= row < h and 0 <= col < w else None)
