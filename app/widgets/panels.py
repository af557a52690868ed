"""Small side panels: the DICOM header, the study's thumbnail strip, the message area."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.model.session import THUMB_SIDE


def qimage_from_grey(grey_u8: np.ndarray) -> QImage:
    """A deep copy of an 8-bit greyscale array as a QImage (safe after the array is freed)."""
    grey = np.ascontiguousarray(grey_u8)
    h, w = grey.shape
    return QImage(grey.data, w, h, grey.strides[0], QImage.Format.Format_Grayscale8).copy()


class MetadataPanel(QWidget):
    """Header rows (tag, name, value) with a filter box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter (name, tag or value)")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Tag", "Name", "Value"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)
        self.filter.textChanged.connect(self._apply_filter)
        self._rows: list[tuple[str, str, str]] = []

    def set_rows(self, rows: list[tuple[str, str, str]]) -> None:
        self._rows = list(rows)
        self.table.setRowCount(len(rows))
        for r, cells in enumerate(rows):
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self._apply_filter(self.filter.text())

    @property
    def rows(self) -> list[tuple[str, str, str]]:
        """All header rows (tag, name, value), shown or filtered out."""
        return list(self._rows)

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r, cells in enumerate(self._rows):
            hit = not needle or any(needle in c.lower() for c in cells)
            self.table.setRowHidden(r, not hit)


class ThumbnailStrip(QListWidget):
    """One icon per image of the study, in reading order; emits the chosen index."""

    chosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.setFixedHeight(THUMB_SIDE + 44)
        self.setMovement(QListWidget.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.currentRowChanged.connect(self._row_changed)
        self._quiet = False

    def set_items(self, captions: list[str]) -> None:
        self._quiet = True
        self.clear()
        placeholder = QPixmap(THUMB_SIDE, THUMB_SIDE)
        placeholder.fill(QColor(40, 40, 40))
        for caption in captions:
            item = QListWidgetItem(QIcon(placeholder), caption)
            item.setToolTip(caption)
            self.addItem(item)
        self._quiet = False

    def set_thumbnail(self, index: int, grey_u8: np.ndarray) -> None:
        item = self.item(index)
        if item is not None:
            item.setIcon(QIcon(QPixmap.fromImage(qimage_from_grey(grey_u8))))

    def mark_failed(self, index: int) -> None:
        item = self.item(index)
        if item is not None and not item.text().startswith("✕"):
            item.setText("✕ " + item.text())
            item.setForeground(QColor(220, 60, 60))

    def set_current(self, index: int) -> None:
        self._quiet = True
        self.setCurrentRow(index)
        self._quiet = False

    def _row_changed(self, row: int) -> None:
        if not self._quiet and row >= 0:
            self.chosen.emit(row)


class MessageArea(QWidget):
    """Non-modal messages: errors and warnings stay visible and never block the window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.list.clear)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.list)
        layout.addLayout(row)

    def post(self, text: str, level: str = "error") -> None:
        stamp = time.strftime("%H:%M:%S")
        item = QListWidgetItem(f"{stamp}  {level.upper()}: {text}")
        colour = {"error": QColor(220, 60, 60), "warning": QColor(220, 150, 0)}.get(level)
        if colour is not None:
            item.setForeground(colour)
        item.setData(Qt.ItemDataRole.UserRole, level)
        self.list.addItem(item)
        self.list.scrollToBottom()

    def messages(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]
