"""File > Model...: choose a model package (bundled, registered, or any .onnx) and read its
card before using it. Packages are opened the way the engine opens them (the same checks), on a
worker thread: a session per package is seconds of work, never the GUI thread's.

The choice runs for this session; "Use as my default for every command" also makes it the
default of every command (`chexnet models default NAME`). A file browsed to is no package name:
it is registered first (copied into the user's models folder, as `chexnet models add` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from chexnet.app.model.model_choice import ModelChoice
from chexnet.app.workers import JobRunner
from chexnet.inference.errors import ChexnetError
from chexnet.inference.package.card_markdown import card_markdown
from chexnet.inference.package.lookup import default_model_name, list_models
from chexnet.inference.scoring.engine import Engine

PATH_ROLE = Qt.ItemDataRole.UserRole
TEXT_ROLE = PATH_ROLE + 1
NAME_ROLE = PATH_ROLE + 2
DEFAULT_TEXT = "Use as my default for every command (chexnet models default)"
REGISTER_TEXT = ("Register this file in my models and use it as my default for every command "
                 "(chexnet models add, then chexnet models default)")


@dataclass(frozen=True)
class PackageRow:
    """One entry of the list: ``name`` is the package name (None for a file browsed to)."""

    label: str
    path: str
    text: str  # the card as Markdown, or why the package is unusable
    name: str | None = None


def describe_packages() -> list[PackageRow]:
    """Every known package, its card read (or why it is unusable), the default marked."""
    default, _how = default_model_name()
    rows = []
    for listing in list_models():
        label = f"{listing.name}  ({listing.source})"
        if listing.name == default:
            label += "  — default for every command"
        if listing.card is None:
            text = f"**{listing.name}** cannot be used: {listing.problem}"
            label += f"  — {listing.problem}"
        else:
            text = card_markdown(listing.card, listing.sha256, Path(listing.path).name)
        rows.append(PackageRow(label, listing.path, text, listing.name))
    return rows


def describe_file(path: str) -> PackageRow:
    """The same for a file the user browsed to (opened with the engine's own checks)."""
    name = Path(path).name
    try:
        engine = Engine(path, device="cpu")
    except ChexnetError as err:
        return PackageRow(name, path, f"**{name}** cannot be used: {err}")
    return PackageRow(name, path, card_markdown(engine.card, engine.sha256, name))


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
        self.make_default = QCheckBox(DEFAULT_TEXT)
        self.make_default.setToolTip("Unticked: the model runs in this window only; the next "
                                     "start, and every command, use the default again")
        self.note = QLabel("")
        self.note.setWordWrap(True)
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
        layout.addWidget(self.make_default)
        layout.addWidget(self.note)
        layout.addWidget(buttons)
        self.list.currentItemChanged.connect(self._show_card)
        browse.clicked.connect(self._browse)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        runner.start("packages", describe_packages, on_result=self._listed,
                     on_error=self._failed)

    def add_row(self, row: PackageRow) -> QListWidgetItem:
        item = QListWidgetItem(row.label)
        item.setData(PATH_ROLE, row.path)
        item.setData(TEXT_ROLE, row.text)
        item.setData(NAME_ROLE, row.name)
        item.setToolTip(row.path)
        self.list.addItem(item)
        return item

    def _listed(self, _token, rows: list[PackageRow]) -> None:
        for row in rows:
            item = self.add_row(row)
            if self.current and row.path == str(self.current):
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
                                  self.add_row(row)))

    def _show_card(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        self.card.setMarkdown(item.data(TEXT_ROLE))
        registered = item.data(NAME_ROLE) is not None
        self.make_default.setText(DEFAULT_TEXT if registered else REGISTER_TEXT)
        self.note.setText("" if registered else
                          f"{Path(item.data(PATH_ROLE)).name} is a file, not a registered "
                          f"package: only a registered package can be the default.")

    def selected_path(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(PATH_ROLE))

    def choice(self) -> ModelChoice | None:
        """What was picked (None: nothing), and whether to make it the default."""
        item = self.list.currentItem()
        if item is None:
            return None
        return ModelChoice(str(item.data(PATH_ROLE)), item.data(NAME_ROLE),
                           self.make_default.isChecked())
