"""Viewer fixtures: a window on a temporary settings file, and waiting for its findings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings

from chexnet.app.main_window import MainWindow
from chexnet.app.model.settings import ViewerSettings

FINDINGS_TIMEOUT_MS = 60_000
DRAW_TIMEOUT_MS = 5_000


@pytest.fixture
def settings(tmp_path: Path) -> ViewerSettings:
    return ViewerSettings(QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def make_window(qtbot, settings, tiny_model):
    """``make_window(model=...)`` -> a shown MainWindow whose model has loaded."""

    def make(model: Path | str | None = tiny_model, store: ViewerSettings = settings):
        window = MainWindow(settings=store, model=str(model) if model else None)
        qtbot.addWidget(window)
        window.resize(1200, 800)
        window.show()
        qtbot.waitUntil(lambda: window.session.engine is not None, timeout=FINDINGS_TIMEOUT_MS)
        return window

    return make


def open_and_wait(qtbot, window: MainWindow, *paths: Path) -> None:
    """Open paths and wait until the findings of the shown image are on screen."""
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.open_paths(list(paths))


def canvas_pixel(window: MainWindow, x: float, y: float) -> np.ndarray:
    """RGB of the canvas on screen at image coordinates (x, y) (column, row)."""
    canvas = window.canvas
    scene = window.canvas.base.mapToScene(x + 0.5, y + 0.5)
    widget_point = canvas.mapFromScene(scene)
    grab = canvas.grab().toImage()
    ratio = grab.devicePixelRatio()
    colour = grab.pixelColor(round(widget_point.x() * ratio), round(widget_point.y() * ratio))
    return np.array([colour.red(), colour.green(), colour.blue()])


def wait_drawn(qtbot, window: MainWindow) -> None:
    """Wait until the canvas layers show what the view state says (heat map on/off, opacity,
    threshold, inversion); the pixel checks then read the screen itself."""
    canvas, state = window.canvas, window.state

    def drawn() -> bool:
        heat = canvas.overlay.image
        seen = np.empty(0) if heat is None else heat[np.isfinite(heat)]
        return (canvas.overlay.isVisible() == (state.cam_visible and heat is not None)
                and abs(canvas.overlay.opacity() - state.opacity) < 1e-6
                and (seen.size == 0 or seen.min() >= np.float32(state.threshold))
                and int(canvas.base.lut[0][0]) == (255 if state.invert else 0))

    qtbot.waitUntil(drawn, timeout=DRAW_TIMEOUT_MS)
