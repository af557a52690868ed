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
        self.show_heat.toggled.connect(lambda v: state.set("cam_visible", v))
        self.threshold.valueChanged.connect(lambda v: state.set("threshold", v / 100.0))
        self.opacity.valueChanged.connect(lambda v: state.set("opacity", v / 100.0))
        self.colour_map.currentTextChanged.connect(lambda v: state.set("colour_map", v))
        self.presets.activated.connect(self.preset_chosen)
        state.changed.connect(self._from_state)
        for name in ("cam_visible", "threshold", "opacity", "colour_map"):
            self._from_state(name)

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

    def _from_state(self, name: str) -> None:
        s = self.state
        if name == "cam_visible":
            _quiet(self.show_heat, self.show_heat.setChecked, s.cam_visible)
        elif name == "threshold":
            _quiet(self.threshold, self.threshold.setValue, round(s.threshold * 100))
            self.threshold_value.setText(f"{s.threshold:.2f}")
        elif name == "opacity":
            _quiet(self.opacity, self.opacity.setValue, round(s.opacity * 100))
            self.opacity_value.setText(f"{s.opacity:.2f}")
        elif name == "colour_map":
            _quiet(self.colour_map, self.colour_map.setCurrentText, s.get("colour_map"))


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
