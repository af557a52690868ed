"""The worklist panel: screen a folder in the background and read it in priority order.

The screening itself is :func:`chexnet.inference.screen.pipeline.screen` (the same pipeline as
``chexnet screen``: decode worker processes, journal, resume, CSV and HTML report), run as a
streaming job of :mod:`chexnet.app.workers`; its ``on_row``/``on_progress`` callbacks become
signals. The table fills as rows arrive; when the run ends (or is cancelled) it is reloaded in
the final worklist order. A cancelled or interrupted run resumes from its journal: press Screen
again on the same folders. A Reviewed column and filter show which images the reader has
marked reviewed (Shift+R; the viewer's feedback).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
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

from chexnet.app.workers import JobRunner, Stream
from chexnet.app.worklist.table_model import COLUMNS, WorklistFilter, WorklistModel
from chexnet.inference.screen.pipeline import ScreenProgress, ScreenSummary, screen
from chexnet.inference.screen.results import STATUSES, ScreenRow

ALL_STATUSES = "all statuses"
ANY_FINDING = "any finding"
#: The reviewed filter's choices and what each keeps (None: every row).
REVIEWED_CHOICES = {"reviewed or not": None, "not reviewed": False, "reviewed": True}


def run_screening(stream: Stream, inputs: list[Path], out_dir: Path,
                  model: str | None) -> ScreenSummary:
    """One ``screen()`` call on a worker: rows and progress go out through ``stream``, which
    also carries the cancel request."""
    return screen(inputs, out_dir, model=model, on_row=stream.item,
                  on_progress=stream.progress, cancel=stream.cancelled)


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
        self.status.addItems([ALL_STATUSES, *STATUSES])
        self.finding = QComboBox()
        self.finding.addItem(ANY_FINDING)
        self.reviewed = QComboBox()
        self.reviewed.addItems(list(REVIEWED_CHOICES))
        self.reviewed.currentIndexChanged.connect(self._reviewed_changed)
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
        for w in (self.status, self.finding, self.reviewed, self.search):
            filters.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addLayout(filters)
        layout.addWidget(self.table)
        # its own pool of one thread: a screening run takes minutes and must not hold up the
        # viewer's decodes and model runs
        self.runner = JobRunner(max_threads=1, parent=self)
        self.stream: Stream | None = None  # the run going on, until its last signal arrives
        self.out_dir: Path | None = None

    # --- running -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True from ``start`` until the run's last signal has been handled here."""
        return self.stream is not None

    def start(self, inputs: list[Path], out_dir: Path, model: str | None) -> bool:
        """Screen ``inputs`` into ``out_dir`` (resuming a journal already there)."""
        if self.running:
            self.message.emit("a screening run is already going: cancel it first", "warning")
            return False
        self.out_dir = out_dir
        self.model.replace([])
        self.progress.setRange(0, 0)
        self.rate.setText("starting…")
        self.cancel_button.setEnabled(True)
        self.stream = self.runner.start_stream(
            out_dir, run_screening, inputs, out_dir, model,
            on_item=self._on_row, on_progress=self._on_progress, on_result=self._on_done,
            on_error=self._on_error, on_finished=self._on_finished)
        return True

    def cancel(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
            self.rate.setText("cancelling: finishing the images already decoded…")

    def stop(self, wait_ms: int = 30_000) -> None:
        """Cancel and wait (window closing); the journal keeps everything finished."""
        if self.stream is not None:
            self.stream.cancel()
        self.runner.shutdown(wait_ms)

    def show_worklist(self, out_dir: Path, rows: list[ScreenRow], labels) -> None:
        """Show a finished (or interrupted) screening folder's ranked rows."""
        self.out_dir = out_dir
        self._show_final(rows, labels)

    def _on_row(self, _token, row: ScreenRow) -> None:
        self.model.append(row)

    def _on_progress(self, _token, p: ScreenProgress) -> None:
        self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)
        eta = "" if p.eta_s is None else f", about {p.eta_s / 60:.0f} min left"
        self.rate.setText(f"{p.rate:.2f} images/s{eta}")

    def _on_done(self, _token, summary: ScreenSummary) -> None:
        self.rate.setText(summary.text())
        self.message.emit(summary.text() + (f" — report: {summary.report_path}"
                                            if summary.report_path else ""), "info")
        self.show_worklist(summary.out_dir, summary.rows, summary.model.labels)

    def _on_error(self, _token, text: str) -> None:
        self.progress.setRange(0, 1)
        self.rate.setText("stopped")
        self.message.emit(f"screening stopped: {text}", "error")

    def _on_finished(self, _token) -> None:
        self.stream = None
        self.cancel_button.setEnabled(False)

    def _show_final(self, rows: list[ScreenRow], labels) -> None:
        self.model.replace(rows)
        current = self.finding.currentText()
        self.finding.blockSignals(True)
        self.finding.clear()
        self.finding.addItems([ANY_FINDING, *labels])
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
        self.proxy.set_filters(None if status == ALL_STATUSES else status,
                               None if finding == ANY_FINDING else finding,
                               self.search.text())

    def _reviewed_changed(self) -> None:
        self.proxy.set_reviewed_filter(REVIEWED_CHOICES[self.reviewed.currentText()])

    def set_reviewed(self, keys: frozenset[str]) -> None:
        """The image keys the reader has marked reviewed (the feedback state's)."""
        self.model.set_reviewed(keys)
        self.proxy.invalidate()

    def _double_clicked(self, index) -> None:
        source = self.proxy.mapToSource(index)
        if source.isValid() and source.row() < len(self.model.rows):
            self.open_requested.emit(self.model.rows[source.row()].path)

    def visible_rows(self) -> list[ScreenRow]:
        return self.proxy.source_rows()
