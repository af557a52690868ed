"""The worklist: screen a folder in the background and read it in priority order.

The screening itself is :func:`chexnet.inference.screen.pipeline.screen` (the same pipeline as
``chexnet screen``: decode worker processes, journal, resume, CSV and HTML report), run on a
``QThread``; its ``on_row``/``on_progress`` callbacks become signals. The table fills as rows
arrive; when the run ends (or is cancelled) it is reloaded in the final worklist order. A
cancelled or interrupted run resumes from its journal: press Screen again on the same folders.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
    QThread,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.workers import describe_error
from chexnet.inference.screen.pipeline import ScreenProgress, screen
from chexnet.inference.screen.results import STATUSES, ScreenRow

COLUMNS = ("Rank", "File", "Status", "Priority", "Abnormal", "Above operating point", "Reason")
FILE_COLUMN = 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class WorklistModel(QAbstractTableModel):
    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.rows: list[ScreenRow] = []

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        row = self.rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _cell_text(row, col)
        if role == SORT_ROLE:
            return _sort_value(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.path if col == FILE_COLUMN else row.reason or None
        return None

    def append(self, row: ScreenRow) -> None:
        self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows))
        self.rows.append(row)
        self.endInsertRows()

    def replace(self, rows: list[ScreenRow]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()


def _cell_text(row: ScreenRow, col: int) -> str:
    if col == 0:
        return "" if row.rank is None else str(row.rank)
    if col == 1:
        return Path(row.path).name
    if col == 2:
        return row.status.replace("_", " ")
    if col == 3:
        return "" if row.priority is None else f"{row.priority:.3f}"
    if col == 4:
        return "" if row.abnormal_score is None else f"{row.abnormal_score:.3f}"
    if col == 5:
        return ", ".join(row.findings_above_threshold)
    return row.reason


def _sort_value(row: ScreenRow, col: int):
    if col in (0, 3):  # priority order: the worklist's own sort key
        return (row.priority_group, -(row.priority or 0.0), row.path)
    if col == 4:
        return -1.0 if row.abnormal_score is None else row.abnormal_score
    return _cell_text(row, col)


class WorklistFilter(QSortFilterProxyModel):
    """Status and finding filters plus free text over file name and reason."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status: str | None = None
        self.finding: str | None = None
        self.text = ""
        self.setSortRole(SORT_ROLE)

    def set_filters(self, status: str | None, finding: str | None, text: str) -> None:
        self.status, self.finding, self.text = status, finding, text.strip().lower()
        self.invalidate()

    def filterAcceptsRow(self, source_row: int, _parent) -> bool:
        row = self.sourceModel().rows[source_row]
        if self.status and row.status != self.status:
            return False
        if self.finding and self.finding not in row.findings_above_threshold:
            return False
        return not self.text or self.text in f"{row.path} {row.reason}".lower()

    def lessThan(self, left, right) -> bool:  # each column's sort values share one type
        return left.data(SORT_ROLE) < right.data(SORT_ROLE)


class ScreenThread(QThread):
    """Runs one ``screen()`` call; every callback is forwarded as a signal."""

    row = Signal(object)
    progress = Signal(object)
    succeeded = Signal(object)  # ScreenSummary
    errored = Signal(str)

    def __init__(self, inputs: list[Path], out_dir: Path, model: str | None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.inputs, self.out_dir, self.model = inputs, out_dir, model
        self.cancel = threading.Event()

    def run(self) -> None:
        try:
            summary = screen(self.inputs, self.out_dir, model=self.model,
                             on_row=self.row.emit, on_progress=self.progress.emit,
                             cancel=self.cancel)
        except BaseException as err:  # reported in the panel, never raised into Qt
            self.errored.emit(describe_error(err))
        else:
            self.succeeded.emit(summary)


class WorklistPanel(QWidget):
    """Progress, filters and the table. ``open_requested(path)`` on double-click."""

    open_requested = Signal(str)
    message = Signal(str, str)  # text, level

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = WorklistModel(self)
        self.proxy = WorklistFilter(self)
        self.proxy.setSourceModel(self.model)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.doubleClicked.connect(self._double_clicked)
        self.status = QComboBox()
        self.status.addItems(["all statuses", *STATUSES])
        self.finding = QComboBox()
        self.finding.addItem("any finding")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Filter file or reason")
        for w in (self.status, self.finding):
            w.currentIndexChanged.connect(self._filters_changed)
        self.search.textChanged.connect(self._filters_changed)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.rate = QLabel("")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        top = QHBoxLayout()
        top.addWidget(self.progress, 1)
        top.addWidget(self.rate)
        top.addWidget(self.cancel_button)
        filters = QHBoxLayout()
        for w in (self.status, self.finding, self.search):
            filters.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.table)
        self.thread: ScreenThread | None = None
        self.out_dir: Path | None = None

    # --- running -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    def start(self, inputs: list[Path], out_dir: Path, model: str | None) -> bool:
        """Screen ``inputs`` into ``out_dir`` (resuming a journal already there)."""
        if self.running:
            self.message.emit("a screening run is already going: cancel it first", "warning")
            return False
        self.out_dir = out_dir
        self.model.replace([])
        self.progress.setRange(0, 0)
        self.rate.setText("starting…")
        self.thread = ScreenThread(inputs, out_dir, model, self)
        self.thread.row.connect(self._on_row)
        self.thread.progress.connect(self._on_progress)
        self.thread.succeeded.connect(self._on_done)
        self.thread.errored.connect(self._on_error)
        self.thread.finished.connect(lambda: self.cancel_button.setEnabled(False))
        self.cancel_button.setEnabled(True)
        self.thread.start()
        return True

    def cancel(self) -> None:
        if self.running:
            self.thread.cancel.set()
            self.rate.setText("cancelling: finishing the images already decoded…")

    def stop(self, wait_ms: int = 30_000) -> None:
        """Cancel and wait (window closing); the journal keeps everything finished."""
        if self.thread is not None:
            self.thread.cancel.set()
            self.thread.wait(wait_ms)

    def show_worklist(self, out_dir: Path, rows: list[ScreenRow], labels) -> None:
        """Show a finished (or interrupted) screening folder's ranked rows."""
        self.out_dir = out_dir
        self._show_final(rows, labels)

    def _on_row(self, row: ScreenRow) -> None:
        self.model.append(row)

    def _on_progress(self, p: ScreenProgress) -> None:
        self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)
        eta = "" if p.eta_s is None else f", about {p.eta_s / 60:.0f} min left"
        self.rate.setText(f"{p.rate:.2f} images/s{eta}")

    def _on_done(self, summary) -> None:
        self.rate.setText(summary.text())
        self.message.emit(summary.text() + (f" — report: {summary.report_path}"
                                            if summary.report_path else ""), "info")
        self.show_worklist(summary.out_dir, summary.rows, summary.model.labels)

    def _on_error(self, text: str) -> None:
        self.progress.setRange(0, 1)
        self.rate.setText("stopped")
        self.message.emit(f"screening stopped: {text}", "error")

    def _show_final(self, rows: list[ScreenRow], labels) -> None:
        self.model.replace(rows)
        current = self.finding.currentText()
        self.finding.blockSignals(True)
        self.finding.clear()
        self.finding.addItems(["any finding", *labels])
        if current in labels:
            self.finding.setCurrentText(current)
        self.finding.blockSignals(False)
        self.progress.setRange(0, max(len(rows), 1))
        self.progress.setValue(len(rows))
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    # --- reading ---------------------------------------------------------------------------
    def _filters_changed(self) -> None:
        status = self.status.currentText()
        finding = self.finding.currentText()
        self.proxy.set_filters(None if status == "all statuses" else status,
                               None if finding == "any finding" else finding,
                               self.search.text())

    def _double_clicked(self, index) -> None:
        source = self.proxy.mapToSource(index)
        if source.isValid() and source.row() < len(self.model.rows):
            self.open_requested.emit(self.model.rows[source.row()].path)

    def visible_rows(self) -> list[ScreenRow]:
        return [self.model.rows[self.proxy.mapToSource(self.proxy.index(r, 0)).row()]
                for r in range(self.proxy.rowCount())]
