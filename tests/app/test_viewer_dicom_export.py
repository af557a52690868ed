"""File > Export DICOM results…: the shown image's report and heat map, written on a worker,
valid DICOM, with the numbers the findings panel shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import FINDINGS_TIMEOUT_MS, open_and_wait
from tests.dicom_check import dciodvfy, sr_probabilities


def test_export_dicom_results_writes_the_report_and_heat_map(qtbot, make_window, rg1_uncr,
                                                             tmp_path):
    window = make_window()
    open_and_wait(qtbot, window, rg1_uncr)
    pred = window.session.prediction(window.nav.index)
    with qtbot.waitSignal(window.dicom_exported, timeout=FINDINGS_TIMEOUT_MS) as done:
        assert window.commands.export_dicom(tmp_path / "dicom")
    written = done.args[0]
    assert sorted(p.name for p in (tmp_path / "dicom").iterdir()) == sorted(
        [written.sr.name, written.sc.name])
    for path in (written.sr, written.sc):
        dciodvfy(Path(path))
    assert sr_probabilities(written.sr) == pytest.approx(
        {f.label: f.probability for f in pred.ranked}, abs=1e-6)
    assert "DICOM results written" in window.messages.list.item(
        window.messages.list.count() - 1).text()


def test_export_dicom_without_a_result_says_so(qtbot, make_window, tmp_path):
    window = make_window()
    assert not window.commands.export_dicom(tmp_path)
    assert not list(tmp_path.iterdir())
