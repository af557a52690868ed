"""Heat map and window controls, bound both ways to the :class:`ViewState`."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QWidget,
)

from chexnet.app.model.view_state import COLOUR_MAPS, ViewState


def _slider() -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(0, 100)
    s.setSingleStep(1)
    s.setPageStep(10)
    return s


class OverlayControls(QWidget):
    """Heat map toggle, threshold and opacity sliders, colour map, window presets."""

    preset_chosen = Signal(int)

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.show_heat = QCheckBox("Show heat map (C)")
        self.threshold = _slider()
        self.threshold.setToolTip("CAM values below this (each map scaled 0..1) are transparent")
        self.threshold_value = QLabel()
        self.opacity = _slider()
        self.opacity_value = QLabel()
        self.colour_map = QComboBox()
        self.colour_map.addItems(COLOUR_MAPS)
        self.presets = QComboBox()
        self.presets.setToolTip("Window presets: keys 1-5")
        self.window_label = QLabel("")
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        form.addRow(self.show_heat)
        form.addRow("Threshold", _with_value(self.threshold, self.threshold_value))
        form.addRow("Opacity", _with_value(self.opacity, self.opacity_value))
        form.addRow("Colour map", self.colour_map)
        form.addRow("Window", self.presets)
        form.addRow("", self.window_label)
        # widget -> model
        self.show_heat.toggled.connect(self._heat_toggled)
        self.threshold.valueChanged.connect(self._threshold_moved)
        self.opacity.valueChanged.connect(self._opacity_moved)
        self.colour_map.currentTextChanged.connect(self._colour_map_chosen)
        self.presets.activated.connect(self.preset_chosen)
        # model -> widget (quietly: no echo back to the model)
        state.cam_visible_changed.connect(self._show_cam_visible)
        state.threshold_changed.connect(self._show_threshold)
        state.opacity_changed.connect(self._show_opacity)
        state.colour_map_changed.connect(self._show_colour_map)
        self._show_cam_visible(state.cam_visible)
        self._show_threshold(state.threshold)
        self._show_opacity(state.opacity)
        self._show_colour_map(state.colour_map)

    def set_presets(self, names: list[str], current: int | None) -> None:
        self.presets.blockSignals(True)
        self.presets.clear()
        self.presets.addItems([f"{i + 1}: {n}" if i < 5 else n for i, n in enumerate(names)])
        if current is not None and 0 <= current < len(names):
            self.presets.setCurrentIndex(current)
        else:
            self.presets.setCurrentIndex(-1)
        self.presets.blockSignals(False)

    def set_window_text(self, text: str) -> None:
        self.window_label.setText(text)

    def _heat_toggled(self, visible: bool) -> None:
        self.state.cam_visible = visible

    def _threshold_moved(self, percent: int) -> None:
        self.state.threshold = percent / 100.0

    def _opacity_moved(self, percent: int) -> None:
        self.state.opacity = percent / 100.0

    def _colour_map_chosen(self, name: str) -> None:
        self.state.colour_map = name

    def _show_cam_visible(self, visible: bool) -> None:
        _quiet(self.show_heat, self.show_heat.setChecked, visible)

    def _show_threshold(self, value: float) -> None:
        _quiet(self.threshold, self.threshold.setValue, round(value * 100))
        self.threshold_value.setText(f"{value:.2f}")

    def _show_opacity(self, value: float) -> None:
        _quiet(self.opacity, self.opacity.setValue, round(value * 100))
        self.opacity_value.setText(f"{value:.2f}")

    def _show_colour_map(self, name: str) -> None:
        _quiet(self.colour_map, self.colour_map.setCurrentText, name)


def _with_value(slider: QSlider, value: QLabel) -> QWidget:
    """A slider with its value beside it. The value label has a fixed size: a label whose text
    changes re-runs the layout of the whole dock otherwise, which halved the frame rate of a
    slider drag (benchmarks/bench_viewer.py)."""
    value.setFixedSize(value.fontMetrics().horizontalAdvance("0.000") + 6,
                       value.fontMetrics().height() + 4)
    box = QWidget()
    row = QHBoxLayout(box)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(slider, 1)
    row.addWidget(value)
    return box


def _quiet(widget: QWidget, setter, value) -> None:
    """Set a widget from the model without echoing the change back (the loop guard)."""
    widget.blockSignals(True)
    try:
        setter(value)
    finally:
        widget.blockSignals(False)
