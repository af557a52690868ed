"""The reader's feedback, driven by its keys on a real window (tiny model, a real NIH image):
the append-only log, the labels CSV the training loader reads, the reader's ID asked once,
the worklist's Reviewed column, and the selected finding's bar staying readable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog

from chexnet.app.feedback_commands import key_of
from chexnet.app.menus import SHORTCUTS
from chexnet.app.model.feedback_log import LABELS_NAME, LOG_NAME, read_events
from chexnet.app.widgets.findings_panel import BAR_COLOURS
from chexnet.training.data.labels import read_label_file
from chexnet.training.evaluation.inputs import load_truth
from tests.app.conftest import open_and_wait

WRITE_TIMEOUT_MS = 10_000


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The user data folder of these tests (the feedback log goes to its ``feedback/``)."""
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def dialogs(monkeypatch):
    """The dialogs the keys open, answered as a reader would; ``asked`` counts them."""
    asked = {"reader": 0, "missed": None, "note": "small effusion? compare with prior"}

    def get_text(*_args, **_kw):
        asked["reader"] += 1
        return "dr-test", True

    def get_item(_parent, _title, _label, items, *_args, **_kw):
        asked["missed"] = items[0]
        return items[0], True

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    monkeypatch.setattr(QInputDialog, "getItem", staticmethod(get_item))
    monkeypatch.setattr(QInputDialog, "getMultiLineText",
                        staticmethod(lambda *_a, **_k: (asked["note"], True)))
    return asked


def log_lines(home: Path) -> list[str]:
    log = home / "feedback" / LOG_NAME
    return log.read_text(encoding="ascii").splitlines() if log.exists() else []


def test_feedback_keys_write_the_log_and_labels_the_loader_reads(qtbot, make_window, home,
                                                                 dialogs, nih_png, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    pred = window.session.prediction(window.nav.index)
    ranked = pred.ranked
    first, second = ranked[0], ranked[1]
    below = [f for f in ranked if not f.above_threshold]
    canvas = window.canvas
    canvas.setFocus()

    def key(k, modifier=Qt.KeyboardModifier.NoModifier):
        """Press ``k`` and wait for its one event to be on disk."""
        before = len(log_lines(home))
        qtbot.keyClick(canvas, k, modifier)
        qtbot.waitUntil(lambda: len(log_lines(home)) == before + 1, timeout=WRITE_TIMEOUT_MS)

    window.state.finding = first.label
    key(Qt.Key.Key_A)                                   # agree with the top finding
    qtbot.keyClick(canvas, Qt.Key.Key_F)  # F selects the next finding: no event
    assert window.state.finding == second.label
    assert len(log_lines(home)) == 1
    key(Qt.Key.Key_D)                                   # disagree with the second
    key(Qt.Key.Key_M)                                   # add a missed one (first below)
    key(Qt.Key.Key_N)                                   # a note
    key(Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)  # mark reviewed
    assert window.state.rotation == 0  # Shift+R is not R (rotate)
    assert dialogs["reader"] == 1  # asked once, then from the settings
    assert window.settings.reader_id == "dr-test"

    events = [json.loads(line) for line in log_lines(home)]
    assert [e["event"] for e in events] == ["finding", "finding", "finding", "note", "reviewed"]
    assert [e["verdict"] for e in events[:3]] == ["agree", "disagree", "missed"]
    missed = dialogs["missed"]
    assert missed == below[0].label
    assert [e["finding"] for e in events[:3]] == [first.label, second.label, missed]
    for e in events:
        assert e["reader"] == "dr-test"
        assert e["model"] == {"name": pred.model.name, "version": pred.model.version,
                              "sha256": pred.model.sha256}
        assert e["image"] == {"path": os.path.abspath(nih_png), "sop_instance_uid": None}
        assert not {k for k in e if "patient" in k.lower()}  # no patient data, ever
    assert events[3]["note"] == dialogs["note"]
    assert events[4]["model_calls"] == {f.label: int(f.above_threshold) for f in ranked}

    # the panel shows it, and the worklist knows the image is reviewed
    table = window.findings.table
    marks = {window.findings.labels_in_order[r]: table.item(r, 3).text()
             for r in range(table.rowCount())}
    assert (marks[first.label], marks[second.label], marks[missed]) == ("✓", "✗", "+")
    assert "Reviewed" in window.findings.feedback.text()
    assert key_of(pred) in window.worklist.panel.model.reviewed

    # the derived CSV beside the log, and the export, read by the training room's own loaders
    with qtbot.waitSignal(window.feedback.state.exported, timeout=WRITE_TIMEOUT_MS) as done:
        window.feedback.state.export(tmp_path / "export")
    result = done.args[0]
    assert result.labels_csv == tmp_path / "export" / LABELS_NAME
    assert (tmp_path / "export" / LOG_NAME).read_bytes() == (
        home / "feedback" / LOG_NAME).read_bytes()
    for csv_path in (result.labels_csv, home / "feedback" / LABELS_NAME):
        table_ = read_label_file(csv_path)
        assert table_.ids == (os.path.abspath(nih_png),)
        assert table_.labels == tuple(f.label for f in ranked)
        values = dict(zip(table_.labels, table_.y[0].tolist(), strict=True))
        expected = {f.label: int(f.above_threshold) for f in ranked}  # the model's calls...
        expected.update({first.label: int(first.above_threshold),  # ...agree
                         second.label: int(not second.above_threshold),  # ...disagree
                         missed: 1})
        assert values == expected
    assert len(load_truth(result.labels_csv)) == 1  # what `chexnet eval --labels` reads

    # the same key again takes the verdict back; nothing is rewritten
    window.state.finding = first.label
    key(Qt.Key.Key_A)
    assert json.loads(log_lines(home)[-1])["verdict"] == "cleared"
    assert table.item(window.findings.labels_in_order.index(first.label), 3).text() == ""


def test_a_new_window_reads_the_log_and_unreviewed_images_stay_out(qtbot, make_window, home,
                                                                    dialogs, nih_png,
                                                                    tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)  # undone
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: len(log_lines(home)) == 3, timeout=WRITE_TIMEOUT_MS)
    key = key_of(window.session.prediction(window.nav.index))

    again = make_window()
    qtbot.waitUntil(lambda: again.feedback.state.of(key) is not None, timeout=WRITE_TIMEOUT_MS)
    fb = again.feedback.state.of(key)
    assert not fb.reviewed
    assert fb.verdict(window.state.finding) == "disagree"
    with qtbot.waitSignal(again.feedback.state.exported, timeout=WRITE_TIMEOUT_MS) as done:
        again.feedback.state.export(tmp_path / "export")
    assert done.args[0].labels_csv is None  # nothing reviewed: no CSV the loader would refuse
    assert done.args[0].table.not_reviewed == 1
    assert len(read_events(tmp_path / "export" / LOG_NAME).events) == 3


def test_feedback_keys_clash_with_no_other_shortcut(make_window):
    window = make_window()
    keys = [a.shortcut().toString() for a in window.actions() if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys)), sorted(keys)
    assert {"A", "D", "M", "N", "F", "Shift+F", "Shift+R"} <= set(keys)
    listed = " ".join(k for _what, k in SHORTCUTS)
    for k in ("A / D", "M", "Shift+R", "N", "F / Shift+F"):
        assert k in listed


def test_the_selected_findings_bar_stays_readable(qtbot, make_window, nih_png, tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    panel, table = window.findings, window.findings.table
    ranked = window.session.prediction(0).ranked
    below = [r for r, f in enumerate(ranked) if not f.above_threshold and f.probability > 0.1]
    for row in [0, *below[:1]]:  # above and below the operating point
        table.selectRow(row)
        qtbot.waitUntil(lambda row=row: table.currentRow() == row)
        label = panel.labels_in_order[row]
        finding = next(f for f in ranked if f.label == label)
        image = table.viewport().grab().toImage()
        image.save(str(tmp_path / f"selected-{row}.png"))  # to look at when this fails
        ratio = image.devicePixelRatio()
        cell = table.visualRect(table.model().index(row, 2))
        pixels = [image.pixelColor(round(x * ratio), round(y * ratio))
                  for x in range(cell.left(), cell.right())
                  for y in range(cell.top(), cell.bottom())]
        rgb = np.array([[c.red(), c.green(), c.blue()] for c in pixels])
        bar = BAR_COLOURS[finding.above_threshold]
        want = np.array([bar.red(), bar.green(), bar.blue()])
        highlight = table.palette().highlight().color()
        near = np.abs(rgb - want).sum(axis=1) <= 12
        # the bar's own colour, over a good part of the cell when the probability is high
        assert near.sum() >= max(4, 0.2 * finding.probability * len(rgb))
        if abs(bar.blue() - highlight.blue()) + abs(bar.red() - highlight.red()) > 12:
            lit = np.array([highlight.red(), highlight.green(), highlight.blue()])
            assert (np.abs(rgb - lit).sum(axis=1) <= 12).any()  # and the row is selected
