"""The viewer's menus and keyboard shortcuts (listed in Help > Keyboard shortcuts)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

ZOOM_STEP = 1.25
SHORTCUTS = [
    ("Open files", "Ctrl+O"), ("Open folder", "Ctrl+Shift+O"), ("Model…", "Ctrl+M"),
    ("Screen a folder", "Ctrl+Shift+S"), ("Save view as PNG", "Ctrl+S"),
    ("Copy findings", "Ctrl+Shift+C"),
    ("Window presets", "1-5"), ("Window/level", "right-drag"), ("Zoom", "wheel, + / -"),
    ("Actual pixels / fit", "Z"), ("Fit", "Space"), ("Invert", "I"),
    ("Flip horizontal / vertical", "H / V"), ("Rotate 90°", "R"), ("Heat map on/off", "C"),
    ("Next / previous image", "Right / Left"), ("Next / previous series", "Down / Up"),
]


def _action(window, menu, text: str, slot, shortcut: str | None = None) -> QAction:
    """An action on the window (so its shortcut works wherever focus is), shown in ``menu``."""
    act = QAction(text, window)
    if shortcut:
        act.setShortcut(QKeySequence(shortcut))
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    act.triggered.connect(slot)
    window.addAction(act)
    if menu is not None:
        menu.addAction(act)
    return act


def build_menus(w) -> None:
    """File, View, Study and Help menus of the main window ``w``."""
    bar = w.menuBar()
    file = bar.addMenu("&File")
    _action(w, file, "Open files…", w.choose_files, "Ctrl+O")
    _action(w, file, "Open folder…", w.choose_folder, "Ctrl+Shift+O")
    w.recent_menu = file.addMenu("Open recent")
    w.fill_recent()
    file.addSeparator()
    _action(w, file, "Screen a folder into a worklist…", w.worklist.choose_and_screen,
            "Ctrl+Shift+S")
    _action(w, file, "Open a worklist…", w.worklist.choose_and_open)
    file.addSeparator()
    _action(w, file, "Model…", w.choose_model, "Ctrl+M")
    _action(w, file, "Re-run model on this image", w.rerun)
    file.addSeparator()
    _action(w, file, "Save view as PNG…", w.choose_save_view, "Ctrl+S")
    _action(w, file, "Copy findings as text", w.copy_findings, "Ctrl+Shift+C")
    file.addSeparator()
    _action(w, file, "Quit", w.close, "Ctrl+Q")

    view = bar.addMenu("&View")
    state, canvas = w.state, w.canvas
    _action(w, view, "Fit", canvas.fit, "Space")
    _action(w, view, "Actual pixels / fit", w.toggle_actual_pixels, "Z")
    _action(w, view, "Zoom in", lambda: canvas.zoom(ZOOM_STEP), "+")
    _action(w, None, "Zoom in (=)", lambda: canvas.zoom(ZOOM_STEP), "=")
    _action(w, view, "Zoom out", lambda: canvas.zoom(1 / ZOOM_STEP), "-")
    _action(w, view, "Invert", lambda: state.toggle("invert"), "I")
    _action(w, view, "Flip horizontal", lambda: state.toggle("flip_h"), "H")
    _action(w, view, "Flip vertical", lambda: state.toggle("flip_v"), "V")
    _action(w, view, "Rotate 90° clockwise",
            lambda: state.set("rotation", state.get("rotation") + 90), "R")
    _action(w, view, "Reset orientation", state.reset_orientation)
    _action(w, view, "Heat map on/off", lambda: state.toggle("cam_visible"), "C")
    view.addAction(w.worklist.toggleViewAction())
    for k in range(5):
        _action(w, None, f"Window preset {k + 1}", lambda _=False, k=k: w.apply_preset(k),
                str(k + 1))

    nav = bar.addMenu("&Study")
    _action(w, nav, "Next image", lambda: w.step_image(1), "Right")
    _action(w, nav, "Previous image", lambda: w.step_image(-1), "Left")
    _action(w, nav, "Next series", lambda: w.step_series(1), "Down")
    _action(w, nav, "Previous series", lambda: w.step_series(-1), "Up")
    _action(w, bar.addMenu("&Help"), "Keyboard shortcuts", w.show_shortcuts)
