"""The reading room's main window: binds the session (data, jobs) to the widgets.

Nothing here decodes or runs a model: :class:`~chexnet.app.model.session.StudySession` does that on
worker threads; this class only shows what comes back and turns user input into requests.
Shortcuts are listed in Help > Keyboard shortcuts (and the README).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.export_view import compose_view, findings_text, legend_lines
from chexnet.app.menus import SHORTCUTS, build_menus
from chexnet.app.model.session import LoadedImage, OpenResult, StudySession
from chexnet.app.model.settings import ViewerSettings
from chexnet.app.model.view_state import ViewState
from chexnet.app.model.window_level import (
    initial_preset,
    pixel_readout,
    preset_kind,
    window_after_drag,
)
from chexnet.app.widgets.canvas import ImageCanvas
from chexnet.app.widgets.findings_panel import FindingsPanel
from chexnet.app.widgets.model_dialog import ModelDialog
from chexnet.app.widgets.overlay_controls import OverlayControls
from chexnet.app.widgets.panels import MessageArea, MetadataPanel, ThumbnailStrip
from chexnet.app.workers import JobRunner
from chexnet.app.worklist.dock import WorklistDock
from chexnet.inference.render.cam import cam_on_image

log = logging.getLogger(__name__)

#: The heat map is rendered at most this many pixels on its long side and stretched onto the
#: image by the view: a 7x7 CAM holds no detail a finer grid would show, and sliders stay fast.
HEAT_SIDE = 512


class MainWindow(QMainWindow):
    #: Emitted when the shown image's findings (and heat map, if any) are on screen.
    findings_shown = Signal(int)
    #: Emitted when an open, load, model or analysis error ends what was asked (the message).
    gave_up = Signal(str)

    def __init__(self, settings: ViewerSettings | None = None, model: str | None = None,
                 device: str = "auto") -> None:
        super().__init__()
        self.setWindowTitle("chexnet viewer")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or ViewerSettings()
        self.state = ViewState(self)
        self.runner = JobRunner(max_threads=2, parent=self)
        self.session = StudySession(self.runner, self)
        self.index = -1
        self.loaded: LoadedImage | None = None
        self.preset_index: int | None = None
        self._auto_advance = True
        self.model_spec = model if model is not None else (self.settings.model or None)
        self._build_widgets()
        build_menus(self)
        self._bind()
        self.state.set("threshold", self.settings.threshold)
        self.state.set("opacity", self.settings.opacity)
        self.state.set("colour_map", self.settings.colour_map)
        self.session.load_model(self.model_spec, device)

    # --- construction -----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.canvas = ImageCanvas()
        self.setCentralWidget(self.canvas)
        self.findings = FindingsPanel()
        self.controls = OverlayControls(self.state)
        right = QWidget()
        col = QVBoxLayout(right)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.findings, 3)
        col.addWidget(self.controls, 0)
        self.metadata = MetadataPanel()
        tabs = QTabWidget()
        tabs.addTab(right, "Findings")
        tabs.addTab(self.metadata, "DICOM header")
        self.side_dock = self._dock("Findings", tabs, Qt.DockWidgetArea.RightDockWidgetArea)
        self.thumbs = ThumbnailStrip()
        self._dock("Study", self.thumbs, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.messages = MessageArea()
        self.messages_dock = self._dock("Messages", self.messages,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.worklist = WorklistDock(self)
        self.cursor_label = QLabel("")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(140)
        self.busy.setVisible(False)
        self.statusBar().addWidget(self.cursor_label, 1)
        self.statusBar().addPermanentWidget(self.busy)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _bind(self) -> None:
        s = self.session
        s.opened.connect(self._on_opened)
        s.image_ready.connect(self._on_image)
        s.thumbnail_ready.connect(self.thumbs.set_thumbnail)
        s.prediction_ready.connect(self._on_prediction)
        s.engine_ready.connect(self._on_engine)
        s.failed.connect(self._on_failed)
        self.runner.busy_changed.connect(self.busy.setVisible)
        self.thumbs.chosen.connect(self.choose_index)
        self.findings.finding_selected.connect(lambda f: self.state.set("finding", f))
        self.controls.preset_chosen.connect(self.apply_preset)
        self.canvas.cursor_moved.connect(self._on_cursor)
        self.canvas.window_drag.connect(self._on_window_drag)
        self.state.changed.connect(self._on_state)

    # --- opening ------------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> None:
        paths = [Path(p) for p in paths]
        if not paths:
            return
        for p in paths:
            self.settings.add_recent(str(p))
        self.settings.last_folder = str(paths[0] if paths[0].is_dir() else paths[0].parent)
        self.fill_recent()
        self.index, self.loaded = -1, None
        self.canvas.set_image(None)
        self.findings.clear()
        self.findings.set_busy("Loading…")
        self.thumbs.set_items([])
        self._auto_advance = True
        self.session.open(paths)

    def choose_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self, "Open images", self.settings.last_folder,
            "Chest X-rays (*.dcm *.dicom *.png *.jpg *.jpeg);;All files (*)")
        self.open_paths(names)

    def choose_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Open a study folder",
                                                self.settings.last_folder)
        if name:
            self.open_paths([name])

    def fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(self.settings.recent))

    def dragEnterEvent(self, event):
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        self.open_paths(paths)

    def _on_opened(self, result: OpenResult) -> None:
        for err in result.scan.skipped:
            self.messages.post(str(err), "warning")
        self.thumbs.set_items([item.caption for item in result.items])
        first = next((i for i, it in enumerate(result.items)
                      if it.instance == result.scan.studies[0].primary), 0)
        self.show_index(first)

    def choose_index(self, index: int) -> None:
        """The reader picked an image: no more automatic skipping of unreadable ones."""
        self._auto_advance = False
        self.show_index(index)

    def show_index(self, index: int) -> None:
        if not 0 <= index < len(self.session.items):
            return
        self.index = index
        self.thumbs.set_current(index)
        loaded = self.session.image(index)
        if loaded is None:
            self.findings.set_busy("Loading image…")
        self.session.request_image(index)

    def step_image(self, delta: int) -> None:
        self._auto_advance = False
        if self.session.items:
            self.show_index(min(max(self.index + delta, 0), len(self.session.items) - 1))

    def step_series(self, delta: int) -> None:
        items = self.session.items
        if not items or self.index < 0:
            return
        key = (items[self.index].study_index, items[self.index].series_index)
        starts = [i for i, it in enumerate(items)
                  if i == 0 or (it.study_index, it.series_index)
                  != (items[i - 1].study_index, items[i - 1].series_index)]
        here = max(i for i, s in enumerate(starts)
                   if (items[s].study_index, items[s].series_index) <= key)
        target = min(max(here + delta, 0), len(starts) - 1)
        self.show_index(starts[target])

    def _on_image(self, index: int, loaded: LoadedImage) -> None:
        if index != self.index:
            return
        first_of_study = self.loaded is None
        self._auto_advance = False
        self.loaded = loaded
        self.preset_index = initial_preset(self.settings.window_preset, len(loaded.presets))
        self.state.set("window", loaded.presets[self.preset_index].window)
        self.canvas.set_image(self._display(), fit=first_of_study)
        self._apply_orientation()
        self.canvas.set_inverted(self.state.get("invert"))
        self.canvas.clear_heat()
        self.controls.set_presets([p.name for p in loaded.presets], self.preset_index)
        self._update_window_text()
        self.metadata.set_rows(loaded.header)
        for w in loaded.image.warnings:
            self.messages.post(f"{loaded.image.path.name}: {w}", "warning")
        if self.session.engine is None:
            self.findings.set_busy("Waiting for the model to load…")
        else:
            self.findings.set_busy("Analysing…")
        self.session.request_prediction(index)
        if first_of_study:
            self.session.request_thumbnails()

    # --- model --------------------------------------------------------------------------------
    def _on_engine(self, engine) -> None:
        device = engine.providers[0].replace("ExecutionProvider", "")
        model = engine.model_id
        self.findings.set_model(model, engine.card, device)
        self.setWindowTitle(f"chexnet viewer — {model.name} {model.version}"
                            + (" (DEMO)" if engine.card.demo else ""))
        if self.loaded is not None:
            self.findings.set_busy("Analysing…")
            self.session.request_prediction(self.index)

    def choose_model(self) -> None:
        dialog = ModelDialog(self.model_spec, self.runner, self)
        if dialog.exec() and dialog.selected_path():
            self.use_model(dialog.selected_path())

    def use_model(self, spec: str) -> None:
        self.model_spec = spec
        self.settings.model = spec
        self.findings.set_model(None, None)
        self.findings.set_busy("Loading model…")
        self.session.load_model(spec)

    def rerun(self) -> None:
        self.session.rerun()
        if self.loaded is not None:
            self.session.request_prediction(self.index)

    def _on_prediction(self, index: int, pred) -> None:
        if index != self.index:
            return
        current = self.state.finding
        if current not in pred.labels and pred.top is not None:
            current = pred.top.label
        self.findings.set_prediction(pred, current)
        self.state.set("finding", current)
        self._update_heat()
        self.findings_shown.emit(index)

    def _on_failed(self, what: str, message: str) -> None:
        self.messages.post(message)
        if what == "image":
            self.thumbs.mark_failed(self.index)
            if self._auto_advance and self.index + 1 < len(self.session.items):
                # Opening a folder: show the first image that can be read; the others' errors
                # stay in the message area and their thumbnails are marked.
                self.show_index(self.index + 1)
                return
        if what in ("open", "image", "predict"):
            self.findings.show_error(message)
        elif what == "model":
            self.findings.set_model(None, None)
            self.findings.set_busy("No model: choose one with File > Model…")
        self.gave_up.emit(message)

    # --- drawing --------------------------------------------------------------------------------
    def _display(self) -> np.ndarray:
        window = self.state.window
        preset = self.loaded.presets[self.preset_index] if self.preset_index is not None else None
        if preset is not None and preset.window == window:
            return self.loaded.image.display_u8(window)
        return self.loaded.image.display_u8(window, cache=False)

    def _update_heat(self) -> None:
        pred = self.session.prediction(self.index)
        finding = self.state.finding
        if pred is None or self.loaded is None or not pred.analysed or finding is None:
            self.canvas.clear_heat()
            return
        h, w = self.loaded.image.shape
        scale = min(1.0, HEAT_SIDE / max(h, w))
        out_shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        heat = cam_on_image(pred.cam(finding), pred.crop_box, (h, w), out_shape)
        box = pred.crop_box
        self.canvas.set_threshold(self.state.threshold)
        self.canvas.set_heat(heat, (box.x0, box.y0, box.x1, box.y1))
        self.canvas.set_opacity(self.state.opacity)
        self.canvas.set_heat_visible(self.state.cam_visible)

    def _apply_orientation(self) -> None:
        self.canvas.set_orientation(self.state.get("flip_h"), self.state.get("flip_v"),
                                    self.state.get("rotation"))

    def _on_state(self, name: str) -> None:
        if name == "threshold":
            self.canvas.set_threshold(self.state.threshold)
            self.settings.threshold = self.state.threshold
        elif name == "opacity":
            self.canvas.set_opacity(self.state.opacity)
            self.settings.opacity = self.state.opacity
        elif name == "colour_map":
            self.canvas.set_colour_map(self.state.get("colour_map"))
            self.settings.colour_map = self.state.get("colour_map")
        elif name == "cam_visible":
            self.canvas.set_heat_visible(self.state.cam_visible)
        elif name == "finding":
            self.findings.select(self.state.finding)
            self._update_heat()
        elif name == "invert":
            self.canvas.set_inverted(self.state.get("invert"))
        elif name in ("flip_h", "flip_v", "rotation"):
            self._apply_orientation()
        elif name == "window" and self.loaded is not None:
            self.canvas.set_image(self._display())
            self._update_window_text()

    # --- window / level -------------------------------------------------------------------------
    def apply_preset(self, k: int) -> None:
        if self.loaded is None or not 0 <= k < len(self.loaded.presets):
            return
        self.preset_index = k
        self.settings.window_preset = preset_kind(k, len(self.loaded.presets))
        self.controls.set_presets([p.name for p in self.loaded.presets], k)
        self.state.set("window", self.loaded.presets[k].window)

    def _on_window_drag(self, dx: float, dy: float, _finished: bool) -> None:
        if self.loaded is None:
            return
        self.preset_index = None
        self.controls.set_presets([p.name for p in self.loaded.presets], None)
        self.state.set("window", window_after_drag(self.loaded, self.state.window, dx, dy))

    def _update_window_text(self) -> None:
        w = self.state.window
        text = "file's own VOI" if w is None else f"C {w.center:.0f} / W {w.width:.0f}"
        self.controls.set_window_text(text)

    def toggle_actual_pixels(self) -> None:
        rect, size = self.canvas.view.viewRect(), self.canvas.view.size()
        if size.width() > 0 and abs(rect.width() / size.width() - 1.0) < 0.02:
            self.canvas.fit()
        else:
            self.canvas.actual_pixels()

    def _on_cursor(self, pos) -> None:
        if pos is None or self.loaded is None:
            self.cursor_label.setText("")
        else:
            self.cursor_label.setText(pixel_readout(self.loaded.image, *pos))

    # --- output -----------------------------------------------------------------------------------
    def view_image(self):
        lines = legend_lines(self.session.prediction(self.index), self.state.finding,
                             self.state.threshold)
        return compose_view(self.canvas.grab(), lines)

    def choose_save_view(self) -> None:
        name, _ = QFileDialog.getSaveFileName(self, "Save view", self.settings.last_folder,
                                              "PNG image (*.png)")
        if name:
            self.save_view(Path(name))

    def save_view(self, path: Path) -> bool:
        ok = self.view_image().save(str(path), "PNG")
        if not ok:
            self.messages.post(f"could not write {path} (check the folder exists and is "
                               f"writable)")
        return ok

    def copy_findings(self) -> None:
        pred = self.session.prediction(self.index)
        text = findings_text(pred, self.loaded.image if self.loaded else None,
                             self.session.engine)
        QGuiApplication.clipboard().setText(text)
        self.statusBar().showMessage("Findings copied" if text else "No findings to copy", 3000)

    def show_shortcuts(self) -> None:
        text = "\n".join(f"{keys:<16} {what}" for what, keys in SHORTCUTS)
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard shortcuts", text,
                          parent=self)
        box.setModal(False)
        box.show()

    def closeEvent(self, event):
        self.settings.sync()
        self.worklist.panel.stop()
        self.session.generation += 1  # anything still running is now stale
        self.runner.shutdown()
        super().closeEvent(event)
