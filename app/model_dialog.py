"""File > Model...: choose a model package (bundled, registered, or any .onnx) and read its
card before using it. Reading a card opens the package's metadata only (no session)."""

from __future__ import annotations

from pathlib import Path

import onnx
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

from chexnet.inference.card import CARD_KEY, ModelCard
from chexnet.inference.card_markdown import card_markdown
from chexnet.inference.engine import file_sha256
from chexnet.inference.models import list_models


def card_of(path: Path) -> str:
    """The package's card as Markdown, or why it cannot be read."""
    try:
        proto = onnx.load(str(path), load_external_data=False)
        meta = {p.key: p.value for p in proto.metadata_props}
        if CARD_KEY not in meta:
            return f"**{path.name}** has no model card: the engine will refuse it."
        card = ModelCard.from_json(meta[CARD_KEY])
        return card_markdown(card, file_sha256(path), path.name)
    except Exception as err:  # shown to the user, not raised: they are browsing
        return f"**{path.name}** cannot be read as a model package: {err}"


class ModelDialog(QDialog):
    def __init__(self, current: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model package")
        self.resize(820, 560)
        self.list = QListWidget()
        self.card = QTextBrowser()
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
        for listing in list_models():
            label = f"{listing.name}  ({listing.source})"
            if listing.problem:
                label += f"  — {listing.problem}"
            self._add(label, listing.path)
        self.list.currentItemChanged.connect(self._show_card)
        browse.clicked.connect(self._browse)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        for i in range(self.list.count()):
            if current and str(self.list.item(i).data(256)) == str(current):
                self.list.setCurrentRow(i)
        if self.list.currentRow() < 0 and self.list.count():
            self.list.setCurrentRow(0)

    def _add(self, label: str, path: Path) -> QListWidgetItem:
        item = QListWidgetItem(label)
        item.setData(256, str(path))
        item.setToolTip(str(path))
        self.list.addItem(item)
        return item

    def _browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Model package", "",
                                              "ONNX model packages (*.onnx)")
        if name:
            self.list.setCurrentItem(self._add(Path(name).name, Path(name)))

    def _show_card(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.card.setMarkdown(card_of(Path(item.data(256))))

    def selected_path(self) -> str | None:
        item = self.list.currentItem()
        return None if item is None else str(item.data(256))
