"""The shown image on screen: the canvas and the window controls kept in step with the view
state (overlay look, orientation, window, finding) and the navigation (image, preset).

The main window hands over what arrives (a decoded image, a prediction); this class decides
what the canvas draws. The arithmetic is in the model layer (:mod:`~chexnet.app.model.heat`,
:mod:`~chexnet.app.model.window_level`, :class:`~chexnet.app.model.navigation.Navigation`).
"""

from __future__ import annotations

from chexnet.app.model.heat import heat_map
from chexnet.app.model.navigation import Navigation
from chexnet.app.model.session import LoadedImage, StudySession
from chexnet.app.model.settings import ViewerSettings
from chexnet.app.model.view_state import ViewState
from chexnet.app.model.window_level import window_after_drag, window_text
from chexnet.app.widgets.canvas import ImageCanvas
from chexnet.app.widgets.overlay_controls import OverlayControls
from chexnet.inference.io.image import Window
from chexnet.inference.scoring.prediction import Prediction


def draw_heat(canvas: ImageCanvas, state: ViewState, pred: Prediction | None,
              image_shape: tuple[int, int] | None) -> None:
    """Draw the selected finding's heat map of ``pred`` on ``canvas`` as the state says (the
    shown image's, and the prior pane's), or none."""
    heat = None if image_shape is None else heat_map(pred, state.finding, image_shape)
    if heat is None:
        canvas.clear_heat()
        return
    canvas.set_threshold(state.threshold)
    canvas.set_heat(heat.values, heat.crop)
    canvas.set_opacity(state.opacity)
    canvas.set_heat_visible(state.cam_visible)


class ImageView:
    """Draws the shown image, its window and its heat map as the state says."""

    def __init__(self, canvas: ImageCanvas, controls: OverlayControls, state: ViewState,
                 nav: Navigation, session: StudySession, settings: ViewerSettings,
                 start_window: str | None = None) -> None:
        self.canvas, self.controls, self.state = canvas, controls, state
        self.nav, self.session, self.settings = nav, session, settings
        #: ``--window``: the preset images start at until the reader picks one
        self.start_window = start_window
        controls.preset_chosen.connect(self.apply_preset)
        canvas.window_drag.connect(self._on_window_drag)
        state.threshold_changed.connect(canvas.set_threshold)
        state.opacity_changed.connect(canvas.set_opacity)
        state.colour_map_changed.connect(canvas.set_colour_map)
        state.cam_visible_changed.connect(canvas.set_heat_visible)
        state.invert_changed.connect(canvas.set_inverted)
        state.finding_changed.connect(self.update_heat)
        state.flip_h_changed.connect(self._apply_orientation)
        state.flip_v_changed.connect(self._apply_orientation)
        state.rotation_changed.connect(self._apply_orientation)
        state.window_changed.connect(self._on_window)

    def show(self, loaded: LoadedImage) -> bool:
        """Draw a newly decoded shown image at ``--window``'s preset, else the remembered kind,
        without a heat map yet. True if it is the first image since the open (the view was
        fitted to it)."""
        first = self.nav.arrived(loaded, self.start_window or self.settings.window_preset)
        self.state.window = self.nav.preset.window
        self.canvas.set_image(self.nav.display(self.state.window), fit=first)
        self._apply_orientation()
        self.canvas.set_inverted(self.state.invert)
        self.canvas.clear_heat()
        self.controls.set_presets([p.name for p in loaded.presets], self.nav.preset_index)
        self.controls.set_window_text(window_text(self.state.window))
        return first

    # --- window / level -------------------------------------------------------------------------
    def apply_preset(self, k: int) -> None:
        """Window preset ``k`` of the shown image (keys 1-5, the presets box); remembered as
        the kind of preset the next image starts with."""
        preset = self.nav.choose_preset(k)
        if preset is None:
            return
        self.start_window = None
        self.settings.window_preset = self.nav.preset_kind
        self.controls.set_presets([p.name for p in self.nav.presets], k)
        self.state.window = preset.window

    def _on_window_drag(self, dx: float, dy: float, _finished: bool) -> None:
        if self.nav.loaded is None:
            return
        self.nav.leave_presets()
        self.controls.set_presets([p.name for p in self.nav.presets], None)
        self.state.window = window_after_drag(self.nav.loaded, self.state.window, dx, dy)

    def _on_window(self, window: Window | None) -> None:
        if self.nav.loaded is not None:
            self.canvas.set_image(self.nav.display(window))
            self.controls.set_window_text(window_text(window))

    # --- overlay --------------------------------------------------------------------------------
    def update_heat(self, *_changed: object) -> None:
        """Draw the selected finding's heat map of the shown image's prediction, if any."""
        loaded = self.nav.loaded
        draw_heat(self.canvas, self.state, self.session.prediction(self.nav.index),
                  None if loaded is None else loaded.image.shape)

    def _apply_orientation(self, *_changed: object) -> None:
        self.canvas.set_orientation(self.state.flip_h, self.state.flip_v, self.state.rotation)
