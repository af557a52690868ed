"""File > Model...: choose a model package (bundled, registered, or any .onnx) and read its
card before using it. Packages are opened the way the engine opens them (the same checks), on a
worker thread: a session per package is seconds of work, never the GUI thread's."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.workers import JobRunner
from chexnet.inference.errors import ChexnetError
from chexnet.inference.package.card_markdown import card_markdown
from chexnet.inference.package.lookup import list_models
from chexnet.inference.scoring.engine import Engine

PATH_ROLE = Qt.ItemDataRole.UserRole


def describe_packages() -> list[tuple[str, str, str]]:
    """(list label, path, card as Markdown or why it is unusable) for every known package."""
    rows = []
    for listing in list_models():
        label = f"{listing.name}  ({listing.source})"
        if listing.card is None:
            text = f"**{listing.name}** cannot be used: {listing.problem}"
            label += f"  — {listing.problem}"
        else:
            text = card_markdown(listing.card, listing.sha256, Path(listing.path).name)
        rows.append((label, listing.path, text))
    return rows


def describe_file(path: str) -> tuple[str, str, str]:
    """The same for a file the user browsed to (opened with the engine's own checks)."""
    name = Path(path).name
    try:
        engine = Engine(path, device="cpu")
    except ChexnetError as err:
        return name, path, f"**{name}** cannot be used: {err}"
    return name, path, card_markdown(engine.card, engine.sha256, name)


class ModelDialog(QDialog):
    def __init__(self, current: str | None, runner: JobRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model package")
        self.resize(820, 560)
        self.runner = runner
        self.current = current
        self.list = QListWidget()
        self.card = QTextBrowser()
        self.card.setMarkdown("Reading the model packages…")
        browse = QPushButton("Browse for an .onnx package…")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use this model")
        left = QVBoxLayout()
        left.addWidget(self.list)
        left.addWidget(browse)
        top = QHBoxLayout()
        top.addLayout(left, 1)
        top.addWidget(self.card, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
        self.list.currentItemChanged.connect(self._show_card)
        browse.clicked.connect(self._browse)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        runner.start("packages", describe_packages, on_result=self._listed,
                     on_error=self._failed)

    def _add(self, label: str, path: str, text: str) -> QListWidgetItem:
        item = QListWidgetItem(label)
        item.setData(PATH_ROLE, path)
        item.setData(PATH_ROLE + 1, text)
        item.setToolTip(path)
        self.list.addItem(item)
        return item

    def _listed(self, _token, rows: list[tuple[str, str, str]]) -> None:
        for row in rows:
            item = self._add(*row)
            if self.current and row[1] == str(self.current):
                self.list.setCurrentItem(item)
        if self.list.currentRow() < 0 and self.list.count():
            self.list.setCurrentRow(0)

    def _failed(self, _token, message: str) -> None:
        self.card.setMarkdown(f"The model packages could not be listed: {message}")

    def _browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Model package", "",
                                              "ONNX model packages (*.onnx)")
        if name:
            self.card.setMarkdown(f"Reading {Path(name).name}…")
            self.runner.start(name, describe_file, name,
                              on_result=lambda _t, row: self.list.setCurrentItem(
                                  self._add(*row)))

    def _show_card(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.card.setMarkdown(item.data(PATH_ROLE + 1))

    def selected_path(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(PATH_ROLE))
