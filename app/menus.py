"""The viewer's menus and keyboard shortcuts (listed in Help > Keyboard shortcuts).

Every item is connected straight to the method that does it (the window, its commands, the
canvas, or the view state's typed toggles): no dispatch on action names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

if TYPE_CHECKING:  # for annotations only: the window imports this module
    from chexnet.app.main_window import MainWindow

ZOOM_STEP = 1.25
SHORTCUTS = [
    ("Open files", "Ctrl+O"), ("Open folder", "Ctrl+Shift+O"),
    ("Open from PACS", "Ctrl+Shift+P"), ("Model…", "Ctrl+M"),
    ("Screen a folder", "Ctrl+Shift+S"), ("Save view as PNG", "Ctrl+S"),
    ("Copy findings", "Ctrl+Shift+C"),
    ("Window presets", "1-5"), ("Window/level", "right-drag"), ("Zoom", "wheel, + / -"),
    ("Actual pixels / fit", "Z"), ("Fit", "Space"), ("Invert", "I"),
    ("Flip horizontal / vertical", "H / V"), ("Rotate 90°", "R"), ("Heat map on/off", "C"),
    ("Next / previous image", "Right / Left"), ("Next / previous series", "Down / Up"),
    ("Next / previous finding", "F / Shift+F"),
    ("Agree / disagree with the selected finding", "A / D"),
    ("Add a finding the model missed", "M"), ("Mark image reviewed / not", "Shift+R"),
    ("Note on this image", "N"), ("Prior pane on/off (the patient's earlier study)", "P"),
]


def add_action(window: QWidget, menu: QMenu | None, text: str, slot: Callable[[], object],
               shortcut: str | None = None) -> QAction:
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


def fill_recent(menu: QMenu, paths: list[str], open_paths: Callable[[list[str]], None]) -> None:
    """One item per recently opened path (disabled when there is none)."""
    menu.clear()
    for path in paths:
        act = menu.addAction(path)
        act.triggered.connect(lambda _=False, p=path: open_paths([p]))
    menu.setEnabled(bool(paths))


def build_menus(w: MainWindow) -> QMenu:
    """File, View, Study and Help menus of the main window ``w``; returns File > Open recent."""
    bar = w.menuBar()
    do = w.commands
    file = bar.addMenu("&File")
    add_action(w, file, "Open files…", do.choose_files, "Ctrl+O")
    add_action(w, file, "Open folder…", do.choose_folder, "Ctrl+Shift+O")
    add_action(w, file, "Open from PACS…", do.open_from_pacs, "Ctrl+Shift+P")
    recent = file.addMenu("Open recent")
    fill_recent(recent, w.settings.recent, w.open_paths)
    add_action(w, file, "Clear PACS cache", do.clear_pacs_cache)
    file.addSeparator()
    add_action(w, file, "Screen a folder into a worklist…", w.worklist.choose_and_screen,
               "Ctrl+Shift+S")
    add_action(w, file, "Open a worklist…", w.worklist.choose_and_open)
    file.addSeparator()
    add_action(w, file, "Model…", do.choose_model, "Ctrl+M")
    add_action(w, file, "Re-run model on this image", w.rerun)
    file.addSeparator()
    add_action(w, file, "Save view as PNG…", do.choose_save_view, "Ctrl+S")
    add_action(w, file, "Copy findings as text", do.copy_findings, "Ctrl+Shift+C")
    add_action(w, file, "Export DICOM results…", do.choose_export_dicom)
    add_action(w, file, "Export feedback…", w.feedback.choose_export)
    file.addSeparator()
    add_action(w, file, "Quit", w.close, "Ctrl+Q")

    view = bar.addMenu("&View")
    state, canvas = w.state, w.canvas
    add_action(w, view, "Fit", canvas.fit, "Space")
    add_action(w, view, "Actual pixels / fit", canvas.toggle_actual_pixels, "Z")
    add_action(w, view, "Zoom in", lambda: canvas.zoom(ZOOM_STEP), "+")
    add_action(w, None, "Zoom in (=)", lambda: canvas.zoom(ZOOM_STEP), "=")
    add_action(w, view, "Zoom out", lambda: canvas.zoom(1 / ZOOM_STEP), "-")
    add_action(w, view, "Invert", state.toggle_invert, "I")
    add_action(w, view, "Flip horizontal", state.toggle_flip_h, "H")
    add_action(w, view, "Flip vertical", state.toggle_flip_v, "V")
    add_action(w, view, "Rotate 90° clockwise", state.rotate_clockwise, "R")
    add_action(w, view, "Reset orientation", state.reset_orientation)
    add_action(w, view, "Heat map on/off", state.toggle_cam_visible, "C")
    add_action(w, view, "Prior pane on/off", w.priors.toggle, "P")
    view.addAction(w.worklist.toggleViewAction())
    for k in range(5):
        add_action(w, None, f"Window preset {k + 1}", lambda _=False, k=k: w.view.apply_preset(k),
                   str(k + 1))

    nav = bar.addMenu("&Study")
    add_action(w, nav, "Next image", lambda: w.step_image(1), "Right")
    add_action(w, nav, "Previous image", lambda: w.step_image(-1), "Left")
    add_action(w, nav, "Next series", lambda: w.step_series(1), "Down")
    add_action(w, nav, "Previous series", lambda: w.step_series(-1), "Up")
    add_action(w, bar.addMenu("&Help"), "Keyboard shortcuts", do.show_shortcuts)
    return recent
