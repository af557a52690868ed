"""The reading room's main window: binds the session (data, jobs) to the widgets.

Nothing here decodes or runs a model: :class:`~chexnet.app.model.session.StudySession` does that
on worker threads, and :class:`~chexnet.app.model.navigation.Navigation` says where the reading
is. This class shows what comes back and turns user input into requests; the shown image is
drawn by :class:`~chexnet.app.image_view.ImageView`, menu commands that open dialogs or write
output are in :mod:`chexnet.app.commands`. Shortcuts: Help > Keyboard shortcuts (and README).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMainWindow

from chexnet.app.commands import WindowCommands
from chexnet.app.feedback_commands import FeedbackCommands, build_feedback_menu
from chexnet.app.image_view import ImageView
from chexnet.app.menus import build_menus, fill_recent
from chexnet.app.model.model_choice import CHOSEN_IN_DIALOG, ModelChoice, make_default
from chexnet.app.model.navigation import Navigation, primary_index
from chexnet.app.model.session import LoadedImage, OpenResult, StudySession
from chexnet.app.model.settings import StartOptions, ViewerSettings
from chexnet.app.model.view_state import ViewState
from chexnet.app.model.window_level import pixel_readout
from chexnet.app.prior_commands import PriorView
from chexnet.app.widgets.canvas import ImageCanvas
from chexnet.app.widgets.findings_panel import FindingsPanel
from chexnet.app.widgets.overlay_controls import OverlayControls
from chexnet.app.widgets.panels import MessageArea, MetadataPanel, ThumbnailStrip
from chexnet.app.window_layout import BOTTOM, RIGHT, add_dock, side_tabs, status_widgets
from chexnet.app.workers import JobRunner
from chexnet.app.worklist.dock import WorklistDock
from chexnet.inference.package.card import match_finding, unknown_finding_message
from chexnet.inference.package.verify import VerifiedPackage


class MainWindow(QMainWindow):
    #: Emitted when the shown image's findings (and heat map, if any) are on screen.
    findings_shown = Signal(int)
    #: Emitted when an open, load, model or analysis error ends what was asked (the message).
    gave_up = Signal(str)
    #: Emitted when File > Export DICOM results… has written its files (the DicomResults).
    dicom_exported = Signal(object)

    def __init__(self, settings: ViewerSettings | None = None,
                 model: str | VerifiedPackage | None = None, device: str = "auto",
                 start: StartOptions | None = None) -> None:
        """``model``: ``--model`` (a path, a package name, or the package already resolved);
        None runs the user's default, else the bundled one. ``start``: the command line's
        overlay, window and finding for this run."""
        super().__init__()
        self.setWindowTitle("chexnet viewer")
        self.resize(1400, 900)
        self.setAcceptDrops(True)
        self.settings = settings or ViewerSettings()
        self.start = start or StartOptions()
        self.state = ViewState(self)
        self.nav = Navigation()
        self.runner = JobRunner(max_threads=2, parent=self)
        self.session = StudySession(self.runner, self)
        self.device = device
        #: what the worklist screens with: the model this window runs (None: the default)
        self.model_spec = str(model.path) if isinstance(model, VerifiedPackage) else model
        self._build_widgets()
        self._bind()
        self.view = ImageView(self.canvas, self.controls, self.state, self.nav, self.session,
                              self.settings, self.start.window)
        self.commands = WindowCommands(self)
        self.feedback = FeedbackCommands(self)  # the reader's verdicts (A, D, M, Shift+R, N)
        self.priors = PriorView(self)  # the patient's earlier study beside this one (P)
        self.recent_menu = build_menus(self)
        build_feedback_menu(self, self.feedback)
        self.settings.follow(self.state, self.start)
        self.session.load_model(model, device)

    # --- construction -----------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.canvas = ImageCanvas()
        self.setCentralWidget(self.canvas)
        self.findings = FindingsPanel()
        self.controls = OverlayControls(self.state)
        self.metadata = MetadataPanel()
        add_dock(self, "Findings", side_tabs(self.findings, self.controls, self.metadata), RIGHT)
        self.thumbs = ThumbnailStrip()
        add_dock(self, "Study", self.thumbs, BOTTOM)
        self.messages = MessageArea()
        add_dock(self, "Messages", self.messages, BOTTOM)
        self.worklist = WorklistDock(self)
        self.cursor_label, self.busy = status_widgets(self.statusBar())

    def _bind(self) -> None:
        s = self.session
        s.opened.connect(self._on_opened)
        s.image_ready.connect(self._on_image)
        s.thumbnail_ready.connect(self.thumbs.set_thumbnail)
        s.prediction_ready.connect(self._on_prediction)
        s.engine_ready.connect(self._on_engine)
        s.open_failed.connect(self._on_failed)
        s.image_failed.connect(self._on_image_failed)
        s.predict_failed.connect(self._on_failed)
        s.model_failed.connect(self._on_model_failed)
        self.runner.busy_changed.connect(self.busy.setVisible)
        self.thumbs.chosen.connect(self.choose_index)
        self.findings.finding_selected.connect(self._finding_selected)
        self.state.finding_changed.connect(self.findings.select)
        self.canvas.cursor_moved.connect(self._on_cursor)

    # --- opening ------------------------------------------------------------------------------
    def open_paths(self, paths: list[str | Path]) -> None:
        paths = [Path(p) for p in paths]
        if not paths:
            return
        for p in paths:
            self.settings.add_recent(str(p))
        self.settings.last_folder = str(paths[0] if paths[0].is_dir() else paths[0].parent)
        fill_recent(self.recent_menu, self.settings.recent, self.open_paths)
        self.nav.reset()
        self.canvas.set_image(None)
        self.findings.clear()
        self.findings.set_busy("Loading…")
        self.thumbs.set_items([])
        self.session.open(paths)

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
        self.show_index(primary_index(result))

    # --- moving ---------------------------------------------------------------------------------
    def choose_index(self, index: int) -> None:
        """The reader picked an image: no more automatic skipping of unreadable ones."""
        if self.nav.choose(index, len(self.session.items)):
            self._request_shown()

    def show_index(self, index: int) -> None:
        if self.nav.go_to(index, len(self.session.items)):
            self._request_shown()

    def step_image(self, delta: int) -> None:
        target = self.nav.step_image(delta, len(self.session.items))
        if target is not None:
            self.show_index(target)

    def step_series(self, delta: int) -> None:
        target = self.nav.step_series(delta, self.session.items)
        if target is not None:
            self.show_index(target)

    def _request_shown(self) -> None:
        index = self.nav.index
        self.thumbs.set_current(index)
        if self.session.image(index) is None:
            self.findings.set_busy("Loading image…")
        self.session.request_image(index)

    def _on_image(self, index: int, loaded: LoadedImage) -> None:
        if index != self.nav.index:
            return
        first_of_study = self.view.show(loaded)
        self.canvas.refresh_cursor()  # the readout is of this image now
        self.metadata.set_rows(loaded.header)
        for w in loaded.image.warnings:
            self.messages.post(f"{loaded.image.path.name}: {w}", "warning")
        self.findings.set_busy("Waiting for the model to load…" if self.session.engine is None
                               else "Analysing…")
        self.session.request_prediction(index)
        if first_of_study:
            self.session.request_thumbnails()

    # --- model --------------------------------------------------------------------------------
    def _on_engine(self, engine) -> None:
        device = engine.providers[0].replace("ExecutionProvider", "")
        model = engine.model_id
        self.findings.set_model(model, engine.card, device, engine.package.chosen_by)
        self.setWindowTitle(f"chexnet viewer — {model.name} {model.version}"
                            + (" (DEMO)" if engine.card.demo else ""))
        if self.start.finding:  # --finding, once: later the reader's choice stands
            label = match_finding(self.start.finding, engine.labels)
            if label is None:
                self.messages.post(unknown_finding_message(self.start.finding, engine.labels))
            self.state.finding = label
            self.start = replace(self.start, finding=None)
        if self.nav.loaded is not None:
            self.findings.set_busy("Analysing…")
            self.session.request_prediction(self.nav.index)

    def use_model(self, spec: str, chosen_by: str = CHOSEN_IN_DIALOG) -> None:
        """Run another model for this session (the default for every command is unchanged)."""
        self.model_spec = spec
        self.findings.set_model(None, None)
        self.findings.set_busy("Loading model…")
        self.session.load_model(spec, self.device, chosen_by)

    def use_choice(self, choice: ModelChoice) -> None:
        """File > Model…'s answer: run it now; make it the default for every command (on a
        worker) when the reader asked to."""
        self.use_model(choice.path)
        if choice.make_default:
            self.runner.start("make-default", make_default, choice,
                              on_result=self._default_made, on_error=self._default_failed)

    def _default_made(self, _token, said: str) -> None:
        self.messages.post(said, "info")
        self.statusBar().showMessage(said, 5000)

    def _default_failed(self, _token, message: str) -> None:
        self.messages.post(f"could not make it the default model: {message}")

    def rerun(self) -> None:
        self.session.rerun()
        if self.nav.loaded is not None:
            self.session.request_prediction(self.nav.index)

    def _on_prediction(self, index: int, pred) -> None:
        if index != self.nav.index:
            return
        current = self.state.finding
        if current not in pred.labels and pred.top is not None:
            current = pred.top.label
        self.findings.set_prediction(pred, current)
        self.state.finding = current
        self.view.update_heat()
        self.findings_shown.emit(index)

    # --- failures: every one is posted; the findings panel says what ended ----------------------
    def _on_image_failed(self, message: str) -> None:
        self.messages.post(message)
        self.thumbs.mark_failed(self.nav.index)
        following = self.nav.after_failure(len(self.session.items))
        if following is not None:
            # Opening a folder: show the first image that can be read; the others' errors stay
            # in the message area and their thumbnails are marked.
            self.show_index(following)
            return
        self._give_up(message)

    def _on_failed(self, message: str) -> None:
        """An open or analysis failure."""
        self.messages.post(message)
        self._give_up(message)

    def _give_up(self, message: str) -> None:
        self.findings.show_error(message)
        self.gave_up.emit(message)

    def _on_model_failed(self, message: str) -> None:
        self.messages.post(message)
        self.findings.set_model(None, None)
        self.findings.set_busy("No model: choose one with File > Model…")
        self.gave_up.emit(message)

    # --- reading --------------------------------------------------------------------------------
    def _finding_selected(self, finding: str) -> None:
        self.state.finding = finding

    def _on_cursor(self, pos) -> None:
        loaded = self.nav.loaded
        self.cursor_label.setText("" if pos is None or loaded is None
                                  else pixel_readout(loaded.image, *pos))

    def closeEvent(self, event):
        self.settings.sync()
        self.feedback.state.wait()  # feedback given is written before the window goes
        self.worklist.panel.stop()
        self.session.abandon()
        self.runner.shutdown()
        super().closeEvent(event)
