"""Reading a folder as a user does: it opens on the chest radiograph, the pixel readout follows
the shown image, and long finding names stay readable."""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QEnterEvent, QFont, QFontMetrics, QMouseEvent
from PySide6.QtWidgets import QApplication

from chexnet.app.model.window_level import pixel_readout
from tests.app.conftest import FINDINGS_TIMEOUT_MS, open_and_wait
from tests.inference.io.dicom_factory import make_dicom
from tests.tiny_model import build_tiny_package, tiny_card

LONG = "Enlarged_Cardiomediastinum_with_Support_Devices_in_place"


def test_a_folder_opens_on_its_chest_radiograph_not_its_ct(qtbot, make_window, tmp_path):
    ramp = (np.arange(128 * 128, dtype=np.uint16).reshape(128, 128) * 4)
    make_dicom(tmp_path / "a_ct.dcm", ramp, Modality="CT", ViewPosition="",
               BodyPartExamined="CHEST")
    make_dicom(tmp_path / "b_lateral.dcm", ramp, ViewPosition="LL")
    make_dicom(tmp_path / "c_pa.dcm", ramp)
    window = make_window()
    open_and_wait(qtbot, window, tmp_path)
    assert window.nav.loaded.image.path.name == "c_pa.dcm"
    assert window.thumbs.currentRow() == window.nav.index
    assert window.findings.table.rowCount() == 14  # analysed, not "not analysed: CT"


def image_point(window, x: int, y: int) -> QPoint:
    """Where image pixel (x, y) is on the canvas's viewport."""
    scene = window.canvas.base.mapToScene(x + 0.5, y + 0.5)
    return window.canvas.mapFromScene(scene)


def move_mouse(window, x: int, y: int) -> None:
    """The mouse moves onto image pixel (x, y): a real move event, delivered now to the widget
    that receives moves (the canvas's viewport), as Qt delivers one. Not ``qtbot.mouseMove``:
    offscreen it goes through the platform's event queue, and a move Qt synthesises around it
    made the readout test time out once in a full run."""
    viewport = window.canvas.viewport()
    local = QPointF(image_point(window, x, y))
    event = QMouseEvent(QEvent.Type.MouseMove, local, viewport.mapToGlobal(local),
                        Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, event)


def test_the_pixel_readout_follows_the_shown_image(qtbot, make_window, tmp_path):
    for name, value in (("a.png", 40), ("b.png", 200)):
        PILImage.fromarray(np.full((128, 128), value, np.uint8)).save(tmp_path / name)
    window = make_window()
    open_and_wait(qtbot, window, tmp_path)
    readout = window.cursor_label
    move_mouse(window, 100, 90)
    move_mouse(window, 60, 50)  # a quick movement (< 10 ms): where it ends is what counts
    qtbot.waitUntil(lambda: "stored 40" in readout.text(), timeout=FINDINGS_TIMEOUT_MS)
    assert readout.text() == pixel_readout(window.nav.loaded.image, 50, 60)
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.step_image(1)  # the mouse does not move: the readout is of the new image
    assert window.nav.loaded.image.path.name == "b.png"
    assert readout.text() == pixel_readout(window.nav.loaded.image, 50, 60)
    assert "stored 200" in readout.text()
    QApplication.sendEvent(window.canvas, QEvent(QEvent.Type.Leave))
    assert readout.text() == ""  # off the canvas: nothing under the cursor
    QApplication.sendEvent(window.canvas, QEnterEvent(image_point(window, 10, 10),
                                                      image_point(window, 10, 10),
                                                      image_point(window, 10, 10)))
    move_mouse(window, 10, 10)
    qtbot.waitUntil(lambda: "x 10  y 10" in readout.text(), timeout=FINDINGS_TIMEOUT_MS)
    window.open_paths([tmp_path / "a.png"])  # a new open clears the shown image...
    assert readout.text() == ""  # ...and its readout


def test_long_finding_names_fit_or_are_elided_with_the_full_name(qtbot, make_window, tmp_path,
                                                                  nih_png):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    panel, table = window.findings, window.findings.table
    header = table.horizontalHeader()

    def whole_width() -> bool:
        used = sum(header.sectionSize(c) for c in range(3))
        return used <= table.viewport().width() + 1

    # the 14 ChestX-ray14 names, bold and marked, all shown whole (not only the rows in view)
    qtbot.waitUntil(whole_width, timeout=FINDINGS_TIMEOUT_MS)
    bold = QFont(table.font())
    bold.setBold(True)
    widest = max(QFontMetrics(bold).horizontalAdvance(f"▲ {label}")
                 for label in window.session.engine.labels)
    assert header.sectionSize(0) > widest
    assert not table.horizontalScrollBar().isVisible()

    labels = ["Effusion", LONG, "Mass"]
    package = build_tiny_package(tmp_path / "long.onnx", tiny_card(labels=labels))
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.use_model(str(package))
    qtbot.waitUntil(whole_width, timeout=FINDINGS_TIMEOUT_MS)
    row = panel.labels_in_order.index(LONG)
    name = table.item(row, 0)
    assert name.font().bold()  # above the tiny model's operating point: marked
    assert QFontMetrics(bold).horizontalAdvance(name.text()) > header.sectionSize(0)  # elided
    assert name.toolTip().startswith(LONG)  # ...and whole in its tooltip
    probability = table.item(row, 1)
    assert header.sectionSize(1) >= QFontMetrics(bold).horizontalAdvance(probability.text())
    assert header.sectionSize(2) > 0  # the bar is still there

