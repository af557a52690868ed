"""The prior pane bound to the window: what it shows follows the shown image and the view state.

:class:`~chexnet.app.model.priors.PriorSession` finds and scores the priors (workers);
:class:`~chexnet.app.widgets.prior_pane.PriorPane` shows one; this class connects them to the
window's session (opens, shown image, predictions, model), to the view state (the selected
finding and its heat map settings, inversion, orientation: the same on both images; the
window/level is the prior's own, right-drag on the prior) and to zoom/pan
(:class:`~chexnet.app.widgets.view_sync.ViewSync`, a toggle, on by default).

The pane (a dock left of the image) appears by itself when the shown image has a prior, unless
the reader hid it with ``P``; shown with no prior, it says why (PHI-free reasons).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget

from chexnet.app.image_view import draw_heat
from chexnet.app.model.priors import PriorResult, PriorSession, change_rows, prior_names
from chexnet.app.model.session import OpenResult
from chexnet.app.model.window_level import window_after_drag
from chexnet.app.widgets.prior_pane import PriorPane
from chexnet.app.widgets.view_sync import ViewSync
from chexnet.app.window_layout import add_dock
from chexnet.inference.io.image import Window
from chexnet.inference.priors.timeline import PriorSearch, when_text

if TYPE_CHECKING:  # for annotations only: the window imports this module
    from chexnet.app.main_window import MainWindow

LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
#: The pane takes half the image's room when it appears, at least this (pixels).
MIN_PANE_WIDTH = 280
SEARCHING = "Looking for earlier studies of this patient…"


class PriorView:
    """The prior pane of one main window."""

    def __init__(self, window: MainWindow) -> None:
        self.w = window
        self.pane = PriorPane()
        self.dock: QDockWidget = add_dock(window, "Prior", self.pane, LEFT)
        self.dock.hide()
        self.model = PriorSession(window.runner, window)
        self.sync = ViewSync(window.canvas, self.pane.canvas, window)
        #: the reader's P: None until pressed (the pane then appears when there is a prior)
        self.wanted: bool | None = None
        self.window: Window | None = None  # the prior's own window (None: the file's)
        self._bind()

    def _bind(self) -> None:
        s, state, pane = self.w.session, self.w.state, self.pane
        s.opened.connect(self._on_opened)
        s.image_ready.connect(self._on_image)
        s.prediction_ready.connect(lambda index, _pred: self._update_changes(index))
        s.engine_ready.connect(lambda _engine: self._load())
        self.model.searched.connect(self._on_searched)
        self.model.prior_ready.connect(self._on_prior)
        self.model.prior_failed.connect(self._on_prior_failed)
        self.model.search_failed.connect(pane.show_nothing)
        pane.prior_chosen.connect(self._choose)
        pane.sync_toggled.connect(self.sync.set_enabled)
        pane.finding_selected.connect(lambda label: setattr(state, "finding", label))
        pane.canvas.window_drag.connect(self._on_window_drag)
        state.finding_changed.connect(self._finding_changed)
        state.threshold_changed.connect(pane.canvas.set_threshold)
        state.opacity_changed.connect(pane.canvas.set_opacity)
        state.colour_map_changed.connect(pane.canvas.set_colour_map)
        state.cam_visible_changed.connect(pane.canvas.set_heat_visible)
        state.invert_changed.connect(pane.canvas.set_inverted)
        for changed in (state.flip_h_changed, state.flip_v_changed, state.rotation_changed):
            changed.connect(self._apply_orientation)
        self.dock.visibilityChanged.connect(self._on_visibility)
        pane.canvas.set_colour_map(state.colour_map)

    # --- P ------------------------------------------------------------------------------------
    @property
    def visible(self) -> bool:
        return self.dock.isVisible()

    def toggle(self) -> None:
        """Key P: show or hide the pane (and remember it for this session)."""
        self.wanted = not self.visible
        self._show(self.wanted)

    def _show(self, show: bool) -> None:
        if show == self.visible:
            return
        if not show:
            self.dock.hide()
            return
        half = max(self.w.canvas.width() // 2, MIN_PANE_WIDTH)  # the two images side by side
        self.dock.show()
        self.w.resizeDocks([self.dock], [half], Qt.Orientation.Horizontal)

    def _on_visibility(self, visible: bool) -> None:
        if visible:
            self._load()
            self.sync.align()

    # --- following the shown image --------------------------------------------------------------
    def _on_opened(self, result: OpenResult) -> None:
        rows = self.w.worklist.panel.model.rows if self.w.worklist.isVisible() else []
        extra = [Path(r.path) for r in rows]
        self.pane.show_nothing(SEARCHING)
        self.model.open(result.scan.studies, extra)

    def _on_image(self, index: int, _loaded) -> None:
        if index == self.w.nav.index:
            self.model.find(self.w.session.items[index].instance.path)

    def _on_searched(self, search: PriorSearch) -> None:
        if not search.priors:
            self.pane.show_nothing(f"No prior: {search.reason}.")
            return
        self.pane.set_priors(prior_names(search), 0)
        self.pane.say("Loading the prior…")
        self.pane.canvas.set_image(None)  # another image's prior must not stay on screen
        self.pane.set_changes([], None)
        if self.wanted is not False:
            self._show(True)
        self._load(0)

    def _choose(self, k: int) -> None:
        self._load(k)

    def _load(self, k: int | None = None) -> None:
        """Decode and score prior ``k`` (default: the one chosen, else the latest) when the pane
        is shown (nothing is decoded for a hidden pane)."""
        search = self.model.search
        if search is None or not search.priors or not self.visible:
            return
        k = k if k is not None else (self.model.chosen or 0)
        if not self.model.choose(k, self.w.session.engine):
            self.pane.say("Waiting for the model to load…")
        elif self.model.result is None:
            self.pane.say("Loading the prior…")

    def _on_prior(self, result: PriorResult) -> None:
        canvas = self.pane.canvas
        self.window = None
        with self.sync.paused():
            canvas.set_image(result.loaded.image.display_u8(), fit=True)
            canvas.set_inverted(self.w.state.invert)
            self._orient()
            self._draw_heat()
        self.sync.align()
        self._update_changes(self.w.nav.index)

    def _on_prior_failed(self, message: str) -> None:
        self.pane.canvas.set_image(None)
        self.pane.set_changes([], None)
        self.pane.say(f"The prior cannot be shown: {message}")
        self.w.messages.post(message)

    def _update_changes(self, index: int) -> None:
        w, result = self.w, self.model.result
        if index != w.nav.index or result is None:
            return
        comparison, why = self.model.comparison(w.session.prediction(index), w.session.engine)
        when = result.match.when_text or "undated"
        if comparison is None:
            self.pane.set_changes([], None)
            self.pane.say(f"Prior of {when}. {why or 'Analysing the current image…'}")
            return
        search = self.model.search
        days = search.interval_days(result.match) if search is not None else None
        since = f", {days} days before" if days is not None else ""
        now = when_text(search.identity) if search is not None and search.identity else ""
        self.pane.say(f"Prior of {when}{since}{f' (this image: {now})' if now else ''}: "
                      f"{len(comparison.new)} new, {len(comparison.resolved)} resolved")
        self.pane.set_changes(change_rows(comparison), w.state.finding)

    # --- drawing --------------------------------------------------------------------------------
    def _finding_changed(self, finding: str | None) -> None:
        self._draw_heat()
        self.pane.select(finding)

    def _draw_heat(self) -> None:
        result = self.model.result
        draw_heat(self.pane.canvas, self.w.state, None if result is None else result.prediction,
                  None if result is None else result.loaded.image.shape)

    def _apply_orientation(self, *_changed: object) -> None:
        with self.sync.paused():
            self._orient()
        self.sync.align()

    def _orient(self) -> None:
        state = self.w.state
        self.pane.canvas.set_orientation(state.flip_h, state.flip_v, state.rotation)

    def _on_window_drag(self, dx: float, dy: float, _finished: bool) -> None:
        """Right-drag on the prior: its own window/level (the current image's is untouched)."""
        result = self.model.result
        if result is None:
            return
        self.window = window_after_drag(result.loaded, self.window, dx, dy)
        self.pane.canvas.set_image(result.loaded.image.display_u8(self.window, cache=False))
