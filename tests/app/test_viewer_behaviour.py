"""The viewer as a radiologist drives it: models, studies, keys, errors, settings, output."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image as PILImage
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from chexnet.app.main_window import MainWindow
from chexnet.inference import Engine, load_image
from tests.app.conftest import FINDINGS_TIMEOUT_MS, open_and_wait
from tests.tiny_model import build_tiny_package, tiny_card


def shown_probabilities(window) -> dict[str, float]:
    table = window.findings.table
    return {window.findings.labels_in_order[r]: float(table.item(r, 1).text())
            for r in range(table.rowCount())}


def test_findings_match_the_engine_ranked(qtbot, make_window, tiny_model, nih_png):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    expected = Engine(tiny_model).predict([load_image(nih_png)])[0]
    shown = shown_probabilities(window)
    assert list(shown) == [f.label for f in expected.ranked]
    for f in expected.ranked:
        assert shown[f.label] == pytest.approx(f.probability, abs=5e-4)
    above = [window.findings.table.item(r, 0).text().startswith("▲")
             for r in range(window.findings.table.rowCount())]
    assert above == [f.above_threshold for f in expected.ranked]
    assert "tiny-test-model" in window.findings.model_label.text()
    assert window.findings.demo_banner.isVisibleTo(window)  # the tiny card says demo


def test_changing_the_model_updates_the_view(qtbot, make_window, settings, tmp_path, nih_png):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    before = shown_probabilities(window)
    other = build_tiny_package(tmp_path / "other.onnx",
                               tiny_card(name="other-model", version="2.0", demo=False), seed=7)
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.use_model(str(other))
    after = shown_probabilities(window)
    assert "other-model" in window.findings.model_label.text()
    assert not window.findings.demo_banner.isVisibleTo(window)
    expected = Engine(other).predict([load_image(nih_png)])[0]
    assert after[expected.top.label] == pytest.approx(expected.top.probability, abs=5e-4)
    assert after != before
    # for this session only, and said so: the next start follows the one rule again
    assert "File &gt; Model" in window.findings.model_label.text()
    assert window.session.engine.package.chosen_by == "File > Model…"
    assert not settings.store.contains("model/spec")


def test_view_controls_and_state_bind_both_ways(qtbot, make_window, nih_png):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    controls = window.controls
    controls.threshold.setValue(80)  # the widget sets the model...
    assert window.state.threshold == pytest.approx(0.8)
    window.state.opacity = 0.3  # ...and the model sets the widget
    assert controls.opacity.value() == 30
    assert window.canvas.overlay.opacity() == pytest.approx(0.3)
    # selecting a row picks the heat map's finding, and the reverse
    second = window.findings.labels_in_order[1]
    window.findings.table.selectRow(1)
    assert window.state.finding == second
    third = window.findings.labels_in_order[2]
    window.state.finding = third
    assert window.findings.table.currentRow() == 2


def test_keyboard_shortcuts(qtbot, make_window, tmp_path, nih_sample):
    folder = tmp_path / "study"
    folder.mkdir()
    names = sorted(p.name for p in (nih_sample / "images").glob("*.png"))[:3]
    for name in names:
        shutil.copy(nih_sample / "images" / name, folder / name)
    window = make_window()
    open_and_wait(qtbot, window, folder)
    canvas = window.canvas
    canvas.setFocus()
    assert window.thumbs.count() == 3
    assert window.nav.index == 0

    def key(k):
        qtbot.keyClick(canvas, k)

    key(Qt.Key.Key_I)
    assert window.state.invert
    key(Qt.Key.Key_C)
    assert not window.state.cam_visible
    assert not canvas.overlay.isVisible()
    key(Qt.Key.Key_C)
    assert canvas.overlay.isVisible()
    key(Qt.Key.Key_H)
    key(Qt.Key.Key_R)
    assert window.state.flip_h
    assert window.state.rotation == 90
    key(Qt.Key.Key_2)  # the automatic percentile window (a PNG has no window of its own)
    assert window.state.window is not None
    assert "auto" in window.state.window.explanation
    key(Qt.Key.Key_3)
    assert window.state.window.explanation == "full range"
    width_before = canvas.view.viewRect().width()
    key(Qt.Key.Key_Plus)
    assert canvas.view.viewRect().width() < width_before * 0.9
    key(Qt.Key.Key_Space)
    assert canvas.view.viewRect().width() >= width_before * 0.95
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        key(Qt.Key.Key_Right)
    assert window.nav.index == 1
    assert window.session.prediction(1).path.name == names[1]
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        key(Qt.Key.Key_Left)
    assert window.nav.index == 0


def test_right_drag_changes_the_window(qtbot, make_window, rg1_uncr):
    window = make_window()
    open_and_wait(qtbot, window, rg1_uncr)
    start = window.state.window
    window.canvas.window_drag.emit(40.0, -20.0, False)  # what the view box emits on right-drag
    after = window.state.window
    assert after.width > start.width
    assert after.center > start.center
    image = window.nav.loaded.image
    shown = window.canvas.base.image
    np.testing.assert_array_equal(shown, image.display_u8(after, cache=False))
    assert len(image._display_cache) <= 2  # interactive windows are not cached


def test_worker_error_reaches_the_message_area(qtbot, make_window, tmp_path):
    bad = tmp_path / "cut.png"
    good = PILImage.fromarray(np.full((64, 64), 100, np.uint8))
    good.save(tmp_path / "full.png")
    bad.write_bytes((tmp_path / "full.png").read_bytes()[:60])
    window = make_window()
    window.open_paths([bad])
    qtbot.waitUntil(lambda: window.messages.list.count() > 0, timeout=FINDINGS_TIMEOUT_MS)
    text = "\n".join(window.messages.messages())
    assert "cut.png" in text
    assert window.isVisible()
    # the window still works afterwards
    open_and_wait(qtbot, window, tmp_path / "full.png")


def test_stale_results_are_dropped(qtbot, make_window, rg1_j2kr, nih_png):
    window = make_window()
    window.open_paths([rg1_j2kr])  # slow to decode...
    open_and_wait(qtbot, window, nih_png)  # ...overtaken by a quick one
    # the slow job too has finished (and its results were dropped)
    qtbot.waitUntil(lambda: window.runner.running == 0, timeout=FINDINGS_TIMEOUT_MS)
    assert window.nav.loaded.image.path == nih_png
    assert window.session.prediction(window.nav.index).path == nih_png
    assert [it.instance.path for it in window.session.items] == [nih_png]


def test_settings_persist(qtbot, make_window, settings, nih_png):
    window = make_window()
    window.state.threshold = 0.7
    window.state.opacity = 0.25
    window.state.colour_map = "viridis"
    open_and_wait(qtbot, window, nih_png)
    window.view.apply_preset(len(window.nav.loaded.presets) - 1)  # full range
    window.close()
    again = make_window()
    assert again.state.threshold == pytest.approx(0.7)
    assert again.state.opacity == pytest.approx(0.25)
    assert again.state.colour_map == "viridis"
    assert again.settings.recent[0] == str(nih_png)
    assert again.settings.last_folder == str(nih_png.parent)
    open_and_wait(qtbot, again, nih_png)
    assert again.state.window.explanation == "full range"


def test_save_view_and_copy_findings(qtbot, make_window, tmp_path, nih_png):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    out = tmp_path / "view.png"
    assert window.commands.save_view(out)
    saved = PILImage.open(out)
    assert saved.width > window.canvas.width()
    assert saved.height >= window.canvas.height()
    window.commands.copy_findings()
    text = QApplication.clipboard().text()
    top = window.session.prediction(window.nav.index).top
    assert top.label in text
    assert f"{top.probability:.3f}" in text
    assert "DEMO" in text


def test_metadata_panel_shows_the_header(qtbot, make_window, rg1_uncr, caplog):
    window = make_window()
    open_and_wait(qtbot, window, rg1_uncr)
    rows = window.metadata.rows
    names = {name for _, name, _ in rows}
    assert {"Modality", "Patient's Name", "Transfer Syntax UID"} <= names
    window.metadata.filter.setText("modality")
    visible = [r for r in range(window.metadata.table.rowCount())
               if not window.metadata.table.isRowHidden(r)]
    assert visible
    assert all("modality" in " ".join(rows[r]).lower() for r in visible)
    patient = next(v for _, n, v in rows if n == "Patient's Name")
    if patient:
        assert patient not in caplog.text  # on screen, never in the logs


def test_lateral_view_is_reported_not_scored(qtbot, make_window, tmp_path, rg1_uncr):
    import pydicom
    ds = pydicom.dcmread(rg1_uncr)
    ds.ViewPosition = "LL"
    path = tmp_path / "lateral.dcm"
    ds.save_as(path)
    window = make_window()
    open_and_wait(qtbot, window, path)
    assert "Not analysed" in window.findings.summary.text()
    assert "lateral" in window.findings.summary.text().lower()
    assert window.findings.table.rowCount() == 0
    assert not window.canvas.overlay.isVisible()


def test_test_time_augmentation_is_said(qtbot, make_window, tmp_path, nih_png):
    package = build_tiny_package(tmp_path / "tta.onnx", tiny_card(tta="five-crop"))
    window = make_window(package)
    open_and_wait(qtbot, window, nih_png)
    assert "five-crop" in window.findings.summary.text()
    expected = Engine(package).predict([load_image(nih_png)])[0]
    assert expected.tta == "five-crop"
    assert shown_probabilities(window)[expected.top.label] == pytest.approx(
        expected.top.probability, abs=5e-4)


def test_model_dialog_lists_packages_with_their_cards_off_the_gui_thread(qtbot, make_window,
                                                                          tmp_path, tiny_model):
    from chexnet.app.widgets.model_dialog import ModelDialog, describe_file

    window = make_window()
    dialog = ModelDialog(None, window.runner, window)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.list.count() > 0, timeout=FINDINGS_TIMEOUT_MS)
    assert "bundled" in dialog.list.item(0).text()
    assert "DEMO" in dialog.card.toPlainText() or "demo" in dialog.card.toPlainText()
    assert dialog.selected_path().endswith(".onnx")
    row = describe_file(str(tiny_model))
    assert row.path == str(tiny_model)
    assert row.name is None  # a file, not a registered package
    assert "tiny-test-model" in row.text
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    assert "cannot be used" in describe_file(str(broken)).text


def test_a_model_that_cannot_load_is_said_and_the_window_lives(qtbot, settings, tmp_path,
                                                                nih_png):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    window = MainWindow(settings=settings, model=str(broken))
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.gave_up, timeout=FINDINGS_TIMEOUT_MS) as blocker:
        window.show()
    assert "broken.onnx" in blocker.args[0]
    assert "No model" in window.findings.summary.text()
    assert window.findings.model_label.text() == "No model loaded"
    assert any("broken.onnx" in m for m in window.messages.messages())
    with qtbot.waitSignal(window.session.image_ready, timeout=FINDINGS_TIMEOUT_MS):
        window.open_paths([nih_png])  # images still open, waiting for a model
    assert "Waiting for the model" in window.findings.summary.text()
