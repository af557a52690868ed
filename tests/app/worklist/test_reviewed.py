"""The worklist's Reviewed column and filter follow the reader's feedback (Shift+R)."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog

from chexnet.app.worklist.table_model import REVIEWED_COLUMN, REVIEWED_MARK
from chexnet.inference.io.uids import DicomUids
from chexnet.inference.screen.results import ScreenRow
from tests.app.conftest import open_and_wait

WRITE_TIMEOUT_MS = 10_000


def row(path: Path, uid: str | None = None) -> ScreenRow:
    return ScreenRow(path=str(path), status="ok", reason="", warnings=(),
                     uids=DicomUids(sop_instance=uid), sha256=None,
                     probabilities={"Mass": 0.7}, abnormal_score=0.7,
                     findings_above_threshold=("Mass",), priority=0.7, priority_group=0,
                     duplicate_of=None, model_name="m", model_version="1", model_sha256="0")


def test_reviewed_column_and_filter(qtbot, make_window, nih_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *_a, **_k: ("dr-w", True)))
    folder = tmp_path / "in"
    folder.mkdir()
    names = sorted(p.name for p in (nih_sample / "images").glob("*.png"))[:3]
    paths = [Path(shutil.copy(nih_sample / "images" / n, folder / n)) for n in names]
    window = make_window()
    panel = window.worklist.panel
    panel.show_worklist(tmp_path / "out", [row(p) for p in paths], ("Mass",))

    def shown() -> list[str]:
        return [Path(r.path).name for r in panel.visible_rows()]

    def marks() -> dict[str, str]:
        proxy = panel.proxy
        return {Path(r.path).name: proxy.index(i, REVIEWED_COLUMN).data()
                for i, r in enumerate(panel.visible_rows())}

    assert set(marks().values()) == {""}
    open_and_wait(qtbot, window, paths[1])
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: marks()[names[1]] == REVIEWED_MARK, timeout=WRITE_TIMEOUT_MS)
    panel.reviewed.setCurrentText("reviewed")
    assert shown() == [names[1]]
    panel.reviewed.setCurrentText("not reviewed")
    assert sorted(shown()) == sorted([names[0], names[2]])
    qtbot.keyClick(window.canvas, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)  # undone
    qtbot.waitUntil(lambda: len(shown()) == 3, timeout=WRITE_TIMEOUT_MS)
    panel.reviewed.setCurrentText("reviewed or not")
    assert len(shown()) == 3
    assert set(marks().values()) == {""}
    panel.table.sortByColumn(REVIEWED_COLUMN, Qt.SortOrder.AscendingOrder)  # sorts (str keys)
    assert len(shown()) == 3
