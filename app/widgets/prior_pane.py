"""The "Prior" pane: the patient's earlier radiograph beside the current one, and what changed.

From the top: which prior (a list, most recent first: the dataset's date or follow-up number),
whether zoom and pan follow the current image, a line saying what the pane is doing or why it
is empty (no prior, and why), the prior's canvas (an :class:`ImageCanvas`: its own
window/level, the same heat map settings as the current image), and per finding the
probability now, before and the change (arrow and delta), with findings newly above the
operating point marked "new" and those that fell below "resolved". The pane computes nothing:
it shows rows that :mod:`chexnet.app.model.priors` made from the inference room's comparison.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.model.priors import ChangeRow
from chexnet.app.widgets.canvas import ImageCanvas

COLUMNS = ("Finding", "Now", "Before", "Change", "")
STATUS_COLOURS = {"new": QColor(200, 40, 40), "resolved": QColor(30, 120, 60)}
ARROW_COLOURS = {"▲": QColor(200, 40, 40), "▼": QColor(40, 90, 180)}


class PriorPane(QWidget):
    """Shows one prior and the change table; says why when there is nothing to show."""

    prior_chosen = Signal(int)       # index in the list of priors
    sync_toggled = Signal(bool)
    finding_selected = Signal(str)   # a row of the change table picked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.choice = QComboBox()
        self.choice.setToolTip("The patient's earlier studies, most recent first")
        self.choice.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.choice.setMinimumContentsLength(12)
        self.choice.currentIndexChanged.connect(self._chosen)
        self.sync = QCheckBox("Sync zoom/pan")
        self.sync.setChecked(True)
        self.sync.setToolTip("Zoom and pan the prior with the current image (window/level "
                             "stays independent)")
        self.sync.toggled.connect(self.sync_toggled)
        top = QHBoxLayout()
        top.addWidget(QLabel("Prior:"))
        top.addWidget(self.choice, 1)
        top.addWidget(self.sync)
        self.status = QLabel("Open a study: its prior is shown here.")
        self.status.setObjectName("priorStatus")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.canvas = ImageCanvas()
        self.canvas.setMinimumSize(200, 200)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.itemSelectionChanged.connect(self._row_picked)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.canvas)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 4, 4, 4)
        col.addLayout(top)
        col.addWidget(self.status)
        col.addWidget(split, 1)
        self._labels: list[str] = []
        self._filling = False

    # --- what is shown ------------------------------------------------------------------------
    def set_priors(self, names: Sequence[str], current: int = 0) -> None:
        """The list of priors (most recent first), ``current`` selected, no signal."""
        self._filling = True
        try:
            self.choice.clear()
            self.choice.addItems(list(names))
            self.choice.setCurrentIndex(current if names else -1)
            self.choice.setEnabled(len(names) > 1)
        finally:
            self._filling = False

    def say(self, text: str) -> None:
        """One line of what the pane is doing or why it shows nothing ('' hides it)."""
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def show_nothing(self, why: str) -> None:
        """No prior to show: the canvas and the table are emptied and the pane says why."""
        self.set_priors([])
        self.canvas.set_image(None)
        self.set_changes([], None)
        self.say(why)

    def set_changes(self, rows: Sequence[ChangeRow], selected: str | None) -> None:
        """The change table, one row per finding; ``selected`` highlighted."""
        self._filling = True
        try:
            self.table.setRowCount(len(rows))
            self._labels = [row.label for row in rows]
            for r, row in enumerate(rows):
                cells = (row.label, row.now, row.before, row.change, row.status)
                for c, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    if c > 0:
                        item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                              | Qt.AlignmentFlag.AlignVCenter)
                    item.setToolTip(row.tooltip)
                    self.table.setItem(r, c, item)
                self._mark(r, row)
            self.select(selected)
        finally:
            self._filling = False

    def select(self, label: str | None) -> None:
        """Highlight ``label``'s row (the finding whose heat map is shown), no signal."""
        was, self._filling = self._filling, True
        try:
            if label in self._labels:
                row = self._labels.index(label)
                self.table.selectRow(row)
                self.table.scrollToItem(self.table.item(row, 0))
            else:
                self.table.clearSelection()
        finally:
            self._filling = was

    def _mark(self, r: int, row: ChangeRow) -> None:
        colour = STATUS_COLOURS.get(row.status)
        if colour is not None:
            bold = QFont(self.table.font())
            bold.setBold(True)
            for c in (0, 4):
                self.table.item(r, c).setFont(bold)
                self.table.item(r, c).setForeground(QBrush(colour))
        arrow = ARROW_COLOURS.get(row.change[:1])
        if arrow is not None:
            self.table.item(r, 3).setForeground(QBrush(arrow))

    # --- reader input ---------------------------------------------------------------------------
    def _chosen(self, index: int) -> None:
        if not self._filling and index >= 0:
            self.prior_chosen.emit(index)

    def _row_picked(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not self._filling and rows:
            self.finding_selected.emit(self._labels[rows[0].row()])
