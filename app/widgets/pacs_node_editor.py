"""Add or edit one PACS node of File > Open from PACS…: a name, the address (``AE@host:port`` or
a DICOMweb URL), our calling AE title, TLS, the timeout and, for PACS that refuse C-GET, a
C-MOVE port. The form says what is wrong with an address before it is kept."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from chexnet.app.model.pacs import SavedNode
from chexnet.inference.pacs.node import NODE_FORM


class NodeEditor(QDialog):
    def __init__(self, saved: SavedNode | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS node")
        saved = saved or SavedNode("", "")
        form = QFormLayout(self)
        self.name = QLineEdit(saved.name)
        self.address = QLineEdit(saved.address)
        self.address.setPlaceholderText(NODE_FORM)
        self.calling_ae = QLineEdit(saved.calling_ae)
        self.calling_ae.setMaxLength(16)
        self.tls = QCheckBox("DICOM over TLS")
        self.tls.setChecked(saved.tls)
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 600)
        self.timeout.setSuffix(" s")
        self.timeout.setValue(saved.timeout_s)
        self.move_port = QSpinBox()
        self.move_port.setRange(0, 65535)
        self.move_port.setSpecialValueText("C-GET (no port needed)")
        self.move_port.setValue(saved.move_port)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #c0392b")
        self.problem.setWordWrap(True)
        form.addRow("Name", self.name)
        form.addRow("Address", self.address)
        form.addRow("Our calling AE title", self.calling_ae)
        form.addRow("", self.tls)
        form.addRow("Timeout", self.timeout)
        form.addRow("C-MOVE port", self.move_port)
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def value(self) -> SavedNode:
        return SavedNode(self.name.text().strip(), self.address.text().strip(),
                         self.calling_ae.text().strip() or "CHEXNET", self.tls.isChecked(),
                         float(self.timeout.value()), int(self.move_port.value()))

    def accept(self) -> None:
        """Only a node that parses is kept; otherwise the form says why."""
        try:
            self.value().node()
        except ValueError as err:
            self.problem.setText(str(err))
            return
        super().accept()
