"""The viewer's worklist: screen a folder in the background, watch it fill, filter, sort,
open a row for reading; cancel and resume without losing or repeating an image."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.app.conftest import FINDINGS_TIMEOUT_MS

SCREEN_TIMEOUT_MS = 240_000


def nih_folder(nih_sample: Path, dst: Path, n: int) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in (nih_sample / "images").glob("*.png"))[:n]
    for name in names:
        shutil.copy(nih_sample / "images" / name, dst / name)
    return [dst / name for name in names]


def wait_done(qtbot, panel) -> None:
    """Until the run's last signal has been handled (``running`` turns false only then)."""
    qtbot.waitUntil(lambda: not panel.running, timeout=SCREEN_TIMEOUT_MS)


def test_screen_a_folder_filter_and_open_a_row(qtbot, make_window, nih_sample, tmp_path):
    folder = tmp_path / "in"
    good = nih_folder(nih_sample, folder, 4)
    (folder / "broken.png").write_bytes(good[0].read_bytes()[:100])
    window = make_window()
    panel = window.worklist.panel
    assert window.worklist.screen([folder], tmp_path / "out")
    assert window.worklist.isVisible()
    wait_done(qtbot, panel)
    rows = panel.model.rows
    assert sorted(Path(r.path).name for r in rows) == sorted(
        [p.name for p in good] + ["broken.png"])
    assert [r.rank for r in rows] == list(range(1, 6))
    by_name = {Path(r.path).name: r for r in rows}
    assert by_name["broken.png"].status == "error"
    assert "broken.png" in by_name["broken.png"].reason or by_name["broken.png"].reason
    assert (tmp_path / "out" / "results.csv").exists()
    assert (tmp_path / "out" / "report.html").exists()
    # the table is in worklist order: analysed images by priority first, errors after
    shown = panel.visible_rows()
    assert shown[-1].status == "error"
    ok = [r for r in shown if r.status == "ok"]
    assert [r.priority for r in ok] == sorted((r.priority for r in ok), reverse=True)

    panel.status.setCurrentText("error")
    assert [Path(r.path).name for r in panel.visible_rows()] == ["broken.png"]
    panel.status.setCurrentText("all statuses")
    with_finding = [r for r in rows if r.findings_above_threshold]
    if with_finding:
        label = with_finding[0].findings_above_threshold[0]
        panel.finding.setCurrentText(label)
        assert all(label in r.findings_above_threshold for r in panel.visible_rows())
        panel.finding.setCurrentText("any finding")
    panel.search.setText(good[1].name)
    assert [Path(r.path).name for r in panel.visible_rows()] == [good[1].name]
    panel.search.setText("")

    # double-click the top row: the viewer reads it, with its heat map
    top = panel.proxy.index(0, 1)
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        panel.table.doubleClicked.emit(top)
    assert str(window.nav.loaded.image.path) == panel.visible_rows()[0].path
    assert window.canvas.overlay.isVisible()


def test_sorting_by_abnormal_score(qtbot, make_window, nih_sample, tmp_path):
    folder = tmp_path / "in"
    nih_folder(nih_sample, folder, 5)
    window = make_window()
    panel = window.worklist.panel
    window.worklist.screen([folder], tmp_path / "out")
    wait_done(qtbot, panel)
    panel.table.sortByColumn(4, Qt.SortOrder.DescendingOrder)  # abnormal score
    scores = [r.abnormal_score for r in panel.visible_rows()]
    assert scores == sorted(scores, reverse=True)


def test_reopen_a_screening_folder(qtbot, make_window, nih_sample, tmp_path):
    folder = tmp_path / "in"
    nih_folder(nih_sample, folder, 3)
    window = make_window()
    panel = window.worklist.panel
    window.worklist.screen([folder], tmp_path / "out")
    wait_done(qtbot, panel)
    ranked = [r.path for r in panel.model.rows]
    panel.model.replace([])
    window.worklist.open_worklist(tmp_path / "out")
    qtbot.waitUntil(lambda: len(panel.model.rows) == 3, timeout=SCREEN_TIMEOUT_MS)
    assert [r.path for r in panel.model.rows] == ranked
    window.worklist.open_worklist(tmp_path / "nothing-here")
    qtbot.waitUntil(lambda: any("nothing-here" in m for m in window.messages.messages()),
                    timeout=SCREEN_TIMEOUT_MS)


def test_cancel_then_resume_covers_each_image_once(qtbot, make_window, nih_sample, tmp_path):
    folder = tmp_path / "in"
    files = nih_folder(nih_sample, folder, 40)
    window = make_window()
    panel = window.worklist.panel
    out = tmp_path / "out"
    window.worklist.screen([folder], out)
    qtbot.waitUntil(lambda: len(panel.model.rows) > 0, timeout=SCREEN_TIMEOUT_MS)
    panel.cancel()
    wait_done(qtbot, panel)
    first = {r.path for r in panel.model.rows}
    if len(first) == len(files):
        pytest.skip("the whole folder was screened before the cancel landed")
    assert 0 < len(first) < len(files)
    assert "cancelled" in panel.rate.text()
    window.worklist.screen([folder], out)  # same folders, same output: resumes
    wait_done(qtbot, panel)
    paths = [r.path for r in panel.model.rows]
    assert sorted(paths) == sorted(str(p) for p in files)
    assert first <= set(paths)


def test_a_chexnet_listen_folder_opens_and_stays_live(qtbot, make_window, nih_sample,
                                                      tiny_model, tmp_path):
    """A node's output folder (one screening folder per study under results/) opens as one
    worklist, and a study screened after it was opened appears without reopening it."""
    from chexnet.inference.node.spool import NodeFolders
    from chexnet.inference.screen.pipeline import screen

    node = NodeFolders.at(tmp_path / "node")
    first = nih_folder(nih_sample, tmp_path / "spool" / "a", 2)
    screen([first[0].parent], node.results / "a", model=tiny_model, workers=1)
    window = make_window()
    dock, panel = window.worklist, window.worklist.panel
    dock.live_timer.setInterval(200)  # the test need not wait 3 s a refresh
    dock.open_worklist(node.root)
    qtbot.waitUntil(lambda: len(panel.model.rows) == 2, timeout=SCREEN_TIMEOUT_MS)
    assert dock.live == node.root
    third = nih_folder(nih_sample, tmp_path / "pool", 3)[2]
    (tmp_path / "spool" / "b").mkdir()
    second = [Path(shutil.copy(third, tmp_path / "spool" / "b" / third.name))]
    screen([second[0].parent], node.results / "b", model=tiny_model, workers=1)
    qtbot.waitUntil(lambda: len(panel.model.rows) == 3, timeout=SCREEN_TIMEOUT_MS)
    assert {Path(r.path).name for r in panel.model.rows} == {p.name for p in [*first, *second]}
    window.worklist.open_worklist(tmp_path / "nothing-here")  # another folder: not live
    assert dock.live is None
