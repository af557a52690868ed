"""File > Open from PACS…: pick a configured node, search its studies, retrieve one and read it.

Every network call (test connection, search, retrieval) runs on a worker (``JobRunner``); the
dialog only shows what comes back, in words (named PACS errors), and stays usable after any
failure. A retrieval shows its progress and can be cancelled (what arrived whole stays in the
cache; the study is not marked complete). When a study is in, ``retrieved(paths)`` is emitted
and the window opens those files as it opens any (then scores them as usual). Each request
carries a token; an answer to an older request than the one shown is dropped.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.model import pacs
from chexnet.app.model.settings import ViewerSettings
from chexnet.app.widgets.pacs_node_editor import NodeEditor
from chexnet.app.workers import JobRunner, Stream
from chexnet.inference.pacs.cache import PacsCache
from chexnet.inference.pacs.client import echo
from chexnet.inference.pacs.node import PacsNode
from chexnet.inference.pacs.query import StudyMatch, parse_date_range

COLUMNS = ("Study date", "Patient", "Description", "Modalities", "Images")
ERROR_STYLE, OK_STYLE = "color: #c0392b", "color: #1e8449"


class PacsDialog(QDialog):
    #: the retrieved study's files (readable series first)
    retrieved = Signal(object)
    #: a search answered (the matches shown), or a request failed (the message)
    searched = Signal(object)
    failed = Signal(str)

    def __init__(self, settings: ViewerSettings, runner: JobRunner,
                 cache: PacsCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.resize(900, 560)
        self.settings, self.runner, self.cache = settings, runner, cache
        self.matches: list[StudyMatch] = []
        self.stream: Stream | None = None
        self.request = 0
        self.build()
        self.fill_nodes()

    # --- construction -----------------------------------------------------------------------
    def build(self) -> None:
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.nodes = QComboBox()
        self.nodes.setMinimumWidth(320)
        row.addWidget(QLabel("PACS"))
        row.addWidget(self.nodes, 1)
        for text, slot in (("Add…", self.add_node), ("Edit…", self.edit_node),
                           ("Remove", self.remove_node), ("Test connection", self.test)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            row.addWidget(button)
            setattr(self, f"{text.split()[0].rstrip('…').lower()}_button", button)
        layout.addLayout(row)
        form = QFormLayout()
        self.patient_id, self.patient_name = QLineEdit(), QLineEdit()
        self.patient_name.setPlaceholderText("DOE^J*  (wildcards allowed)")
        self.accession, self.dates = QLineEdit(), QLineEdit()
        self.dates.setPlaceholderText("20240101-20240131, 20240101-, -20240131 or one date")
        self.modalities = QLineEdit("CR DX")
        self.modalities.setToolTip("modalities in the study, separated by spaces; empty: any")
        for label, edit in (("Patient ID", self.patient_id), ("Patient name", self.patient_name),
                            ("Accession", self.accession), ("Study date", self.dates),
                            ("Modalities", self.modalities)):
            edit.returnPressed.connect(self.search)
            form.addRow(label, edit)
        layout.addLayout(form)
        self.search_button = QPushButton("Search")
        self.search_button.clicked.connect(self.search)
        layout.addWidget(self.search_button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.doubleClicked.connect(self.retrieve_selected)
        layout.addWidget(self.table, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        bottom = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.retrieve_button = QPushButton("Retrieve && read")
        self.retrieve_button.clicked.connect(self.retrieve_selected)
        self.cancel_button = QPushButton("Cancel retrieval")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        bottom.addWidget(self.progress, 1)
        bottom.addWidget(self.retrieve_button)
        bottom.addWidget(self.cancel_button)
        layout.addLayout(bottom)

    # --- nodes ------------------------------------------------------------------------------
    def fill_nodes(self, select: int = 0) -> None:
        self.nodes.clear()
        for saved in self.settings.pacs_nodes:
            self.nodes.addItem(saved.label)
        self.nodes.setCurrentIndex(min(select, self.nodes.count() - 1))
        if not self.nodes.count():
            self.say("No PACS configured yet: Add… one (AE@host:port or a DICOMweb URL)")

    def add_node(self) -> None:
        editor = NodeEditor(parent=self)
        if editor.exec():
            self.keep_node(editor.value())

    def keep_node(self, saved: pacs.SavedNode, index: int | None = None) -> None:
        """Store ``saved`` (a new node, or in place of node ``index``) and select it."""
        nodes = self.settings.pacs_nodes
        if index is None:
            nodes.append(saved)
            index = len(nodes) - 1
        else:
            nodes[index] = saved
        self.settings.pacs_nodes = nodes
        self.fill_nodes(index)

    def edit_node(self) -> None:
        index, nodes = self.nodes.currentIndex(), self.settings.pacs_nodes
        if 0 <= index < len(nodes):
            editor = NodeEditor(nodes[index], self)
            if editor.exec():
                self.keep_node(editor.value(), index)

    def remove_node(self) -> None:
        index, nodes = self.nodes.currentIndex(), self.settings.pacs_nodes
        if 0 <= index < len(nodes):
            del nodes[index]
            self.settings.pacs_nodes = nodes
            self.fill_nodes()

    def current_node(self) -> PacsNode | None:
        index, nodes = self.nodes.currentIndex(), self.settings.pacs_nodes
        if not 0 <= index < len(nodes):
            self.say("Choose a PACS first (Add… one)", error=True)
            return None
        return nodes[index].node()

    # --- requests (each on a worker) ----------------------------------------------------------
    def next_token(self) -> int:
        self.request += 1
        return self.request

    def test(self) -> None:
        node = self.current_node()
        if node is not None:
            self.say(f"Testing {node}…")
            self.runner.start(self.next_token(), echo, node, on_result=self.tested,
                              on_error=self.request_failed)

    def tested(self, token: int, seconds: float) -> None:
        if token == self.request:
            self.say(f"The PACS answers ({seconds * 1000:.0f} ms)", ok=True)

    def search(self) -> None:
        node = self.current_node()
        if node is None:
            return
        try:
            date_from, date_to = parse_date_range(self.dates.text()) if \
                self.dates.text().strip() else ("", "")
        except ValueError as err:
            self.say(str(err), error=True)
            return
        fields = {"patient_id": self.patient_id.text(), "patient_name": self.patient_name.text(),
                  "accession": self.accession.text(), "date_from": date_from,
                  "date_to": date_to}
        modalities = tuple(self.modalities.text().upper().split())
        self.say("Searching…")
        self.search_button.setEnabled(False)
        self.runner.start(self.next_token(), pacs.search, node, fields, modalities,
                          on_result=self.show_matches, on_error=self.request_failed)

    def show_matches(self, token: int, matches: list[StudyMatch]) -> None:
        if token != self.request:
            return
        self.search_button.setEnabled(True)
        self.matches = matches
        self.table.setRowCount(len(matches))
        for r, m in enumerate(matches):
            patient = " ".join(p for p in (m.patient_name.replace("^", " "), m.patient_id) if p)
            cells = (m.date_text, patient, m.description, "/".join(m.modalities),
                     "?" if m.instances is None else str(m.instances))
            for c, value in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(value))
        if matches:
            self.table.selectRow(0)
        self.say(f"{len(matches)} studies found" if matches else "No matching study")
        self.searched.emit(matches)

    def retrieve_selected(self) -> None:
        row = self.table.currentRow()
        node = self.current_node()
        if node is None or not 0 <= row < len(self.matches):
            if node is not None:
                self.say("Choose a study in the list first", error=True)
            return
        self.set_busy(True)
        self.say("Retrieving…")
        self.stream = self.runner.start_stream(
            self.next_token(), pacs.retrieve, node, self.matches[row].study_uid, self.cache,
            on_progress=self.show_progress, on_result=self.retrieval_done,
            on_error=self.request_failed)

    def show_progress(self, token: int, value: tuple[int, int]) -> None:
        if token == self.request:
            done, total = value
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
            self.progress.setFormat(f"{done}/{total} images")

    def retrieval_done(self, token: int, paths: list[Path]) -> None:
        if token != self.request:
            return
        self.set_busy(False)
        self.say(f"{len(paths)} images retrieved", ok=True)
        self.retrieved.emit(list(paths))
        self.accept()

    def cancel(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
            self.say("Cancelling…")

    def request_failed(self, token: int, message: str) -> None:
        if token != self.request:
            return
        self.set_busy(False)
        self.search_button.setEnabled(True)
        self.say(message, error=True)
        self.failed.emit(message)

    # --- state ----------------------------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)
        else:
            self.stream = None
        self.cancel_button.setEnabled(busy)
        self.retrieve_button.setEnabled(not busy)
        self.search_button.setEnabled(not busy)

    def say(self, text: str, *, error: bool = False, ok: bool = False) -> None:
        self.status.setStyleSheet(ERROR_STYLE if error else OK_STYLE if ok else "")
        self.status.setText(text)

    def reject(self) -> None:
        """Closing the dialog cancels a retrieval in progress."""
        self.cancel()
        super().reject()
