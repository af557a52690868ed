"""How the main window is laid out: the docks around the image, the side tabs, the status bar.

Construction only (no behaviour), so :mod:`chexnet.app.main_window` reads as the binding of the
session to the widgets.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QStatusBar,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea


def add_dock(window: QMainWindow, title: str, widget: QWidget,
             area: Qt.DockWidgetArea) -> QDockWidget:
    """A dock that can be moved and floated but not closed (nothing to lose it behind)."""
    dock = QDockWidget(title, window)
    dock.setObjectName(title)
    dock.setWidget(widget)
    dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                     | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
    window.addDockWidget(area, dock)
    return dock


def side_tabs(findings: QWidget, controls: QWidget, metadata: QWidget) -> QTabWidget:
    """Two tabs: "Findings" (the findings panel above the overlay controls), "DICOM header"."""
    right = QWidget()
    col = QVBoxLayout(right)
    col.setContentsMargins(0, 0, 0, 0)
    col.addWidget(findings, 3)
    col.addWidget(controls, 0)
    tabs = QTabWidget()
    tabs.addTab(right, "Findings")
    tabs.addTab(metadata, "DICOM header")
    return tabs


def status_widgets(bar: QStatusBar) -> tuple[QLabel, QProgressBar]:
    """The pixel readout (left) and a busy indicator shown while jobs run (right)."""
    cursor_label = QLabel("")
    busy = QProgressBar()
    busy.setRange(0, 0)
    busy.setMaximumWidth(140)
    busy.setVisible(False)
    bar.addWidget(cursor_label, 1)
    bar.addPermanentWidget(busy)
    return cursor_label, busy
