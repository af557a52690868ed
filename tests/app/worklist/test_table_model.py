"""The worklist table's model without a view: what each column shows, how it sorts, and the
status / finding / text filters, on rows of a real screening run."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from chexnet.app.worklist.table_model import (
    COLUMNS,
    FILE_COLUMN,
    WorklistFilter,
    WorklistModel,
    cell_text,
    sort_value,
)
from chexnet.inference.screen.pipeline import screen
from chexnet.inference.screen.results import ScreenRow


@pytest.fixture(scope="module")
def rows(tmp_path_factory, nih_sample, tiny_model) -> list[ScreenRow]:
    """Three NIH images and a cut PNG, screened with the tiny model (worklist order)."""
    root = tmp_path_factory.mktemp("worklist")
    folder = root / "in"
    folder.mkdir()
    names = sorted(p.name for p in (nih_sample / "images").glob("*.png"))[:3]
    for name in names:
        shutil.copy(nih_sample / "images" / name, folder / name)
    (folder / "broken.png").write_bytes((folder / names[0]).read_bytes()[:100])
    return screen([folder], root / "out", model=str(tiny_model)).rows


def test_cells_show_the_rows_fields(rows):
    ok = next(r for r in rows if r.status == "ok")
    broken = next(r for r in rows if r.status == "error")
    assert cell_text(ok, 0) == str(ok.rank)
    assert cell_text(ok, FILE_COLUMN) == Path(ok.path).name
    assert cell_text(ok, 2) == "ok"
    assert cell_text(ok, 3) == f"{ok.priority:.3f}"
    assert cell_text(ok, 4) == f"{ok.abnormal_score:.3f}"
    assert cell_text(ok, 5) == ", ".join(ok.findings_above_threshold)
    assert cell_text(broken, 3) == ""  # never scored
    assert cell_text(broken, 4) == ""
    assert cell_text(broken, len(COLUMNS) - 1) == broken.reason
    unranked = dataclasses.replace(ok, rank=None, status="not_analysed")
    assert cell_text(unranked, 0) == ""
    assert cell_text(unranked, 2) == "not analysed"


def test_rank_and_priority_sort_in_worklist_order(rows):
    by_rank = sorted(rows, key=lambda r: sort_value(r, 0))
    assert by_rank == sorted(rows, key=ScreenRow.sort_key)
    assert [r.rank for r in by_rank] == list(range(1, len(rows) + 1))
    assert sorted(rows, key=lambda r: sort_value(r, 3)) == by_rank
    broken = next(r for r in rows if r.status == "error")
    assert sort_value(broken, 4) == -1.0  # unscored sorts below every score


def test_filters_and_sorting_through_the_proxy(qtbot, rows):
    model = WorklistModel()
    proxy = WorklistFilter()
    proxy.setSourceModel(model)
    for row in reversed(rows):
        model.append(row)
    assert model.rowCount() == len(rows)
    assert model.headerData(FILE_COLUMN, Qt.Orientation.Horizontal) == "File"
    proxy.sort(0, Qt.SortOrder.AscendingOrder)
    assert proxy.source_rows() == rows  # screen() hands them out in worklist order
    proxy.sort(4, Qt.SortOrder.DescendingOrder)
    scores = [-1.0 if r.abnormal_score is None else r.abnormal_score
              for r in proxy.source_rows()]
    assert scores == sorted(scores, reverse=True)
    proxy.set_filters("error", None, "")
    assert [Path(r.path).name for r in proxy.source_rows()] == ["broken.png"]
    name = Path(rows[0].path).name
    proxy.set_filters(None, None, f"  {name.upper()} ")  # trimmed, any case
    assert [Path(r.path).name for r in proxy.source_rows()] == [name]
    labelled = [r for r in rows if r.findings_above_threshold]
    if labelled:
        label = labelled[0].findings_above_threshold[0]
        proxy.set_filters(None, label, "")
        assert all(label in r.findings_above_threshold for r in proxy.source_rows())
    proxy.set_filters(None, None, "")
    model.replace(rows[:1])
    assert proxy.source_rows() == rows[:1]
    tip = model.data(model.index(0, FILE_COLUMN), Qt.ItemDataRole.ToolTipRole)
    assert tip == rows[0].path
