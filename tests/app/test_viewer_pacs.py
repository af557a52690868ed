"""File > Open from PACS… against a real Orthanc (one that refuses unknown callers): a configured
node is kept in the settings, a search fills the table, "Retrieve & read" brings the study in
on a worker and the window shows its findings and heat map; an unreachable node, a refused
association and a silent node each say what is wrong and leave dialog and window usable; a
cancelled retrieval leaves nothing half-written; `--pacs --accession --screenshot` reads a
study headless."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chexnet.app.model.pacs import SavedNode
from chexnet.inference.pacs.cache import CACHE_ENV, MARKER, TEMP_GLOB, PacsCache
from tests.app.conftest import FINDINGS_TIMEOUT_MS, wait_drawn
from tests.pacs.archive import closed_port, running_archive, silent_port

STRICT = {"DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
          "DicomCheckCalledAet": True}  # strangers are refused at association


@pytest.fixture(scope="module")
def archive(tmp_path_factory, rg1_j2kr):
    with running_archive(tmp_path_factory.mktemp("viewer-pacs"), rg1_j2kr,
                         options=STRICT) as archive:
        yield archive


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def pacs_dialog(window, *nodes: SavedNode):
    dialog = window.commands.open_from_pacs()
    for saved in nodes:
        dialog.keep_node(saved)
    return dialog


def test_search_retrieve_and_read(qtbot, make_window, archive, settings):
    window = make_window()
    dialog = pacs_dialog(window, SavedNode("test PACS", archive.address))
    assert [n.address for n in settings.pacs_nodes] == [archive.address]  # kept
    dialog.accession.setText("ACC-1001")
    with qtbot.waitSignal(dialog.searched, timeout=FINDINGS_TIMEOUT_MS):
        dialog.search_button.click()
    assert dialog.table.rowCount() == 1
    cells = [dialog.table.item(0, c).text() for c in range(dialog.table.columnCount())]
    assert cells == ["2024-01-05", "Alpha Ann PAT-001", "CHEST PA", "CR", "3"]
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        dialog.retrieve_button.click()
    assert not dialog.isVisible()
    shown = window.nav.loaded.image.path
    assert shown.parent == PacsCache().study_dir(archive.studies["ACC-1001"])
    assert len(window.session.items) == 3
    assert window.findings.table.rowCount() == len(window.session.engine.labels)
    wait_drawn(qtbot, window)
    assert window.canvas.overlay.image is not None  # the top finding's heat map


def test_failures_are_said_in_words_and_leave_the_window_usable(qtbot, make_window, archive,
                                                                 tmp_path):
    window = make_window()
    with silent_port() as silent:
        dialog = pacs_dialog(
            window, SavedNode("down", f"ORTHANC@127.0.0.1:{closed_port()}"),
            SavedNode("stranger", archive.address, calling_ae="STRANGER"),
            SavedNode("silent", f"ORTHANC@127.0.0.1:{silent}", timeout_s=1.5))
        for index, said in ((0, "connection refused"),
                            (1, "does not know our calling AE title 'STRANGER'"),
                            (2, "no answer")):
            dialog.nodes.setCurrentIndex(index)
            with qtbot.waitSignal(dialog.failed, timeout=FINDINGS_TIMEOUT_MS) as failed:
                dialog.test_button.click()
            assert said in failed.args[0]
            assert said in dialog.status.text()
            with qtbot.waitSignal(dialog.failed, timeout=FINDINGS_TIMEOUT_MS):
                dialog.search_button.click()  # a search fails the same way
            assert dialog.search_button.isEnabled()
            assert dialog.retrieve_button.isEnabled()
    dialog.close()
    assert window.isEnabled()
    qtbot.waitUntil(lambda: window.runner.running == 0, timeout=FINDINGS_TIMEOUT_MS)


def test_a_cancelled_retrieval_leaves_nothing_half_written(qtbot, make_window, archive):
    window = make_window()
    dialog = pacs_dialog(window, SavedNode("test PACS", archive.address))
    dialog.patient_id.setText("PAT-002")
    with qtbot.waitSignal(dialog.searched, timeout=FINDINGS_TIMEOUT_MS):
        dialog.search()
    with qtbot.waitSignal(dialog.failed, timeout=FINDINGS_TIMEOUT_MS) as failed:
        dialog.retrieve_selected()
        dialog.cancel_button.click()
    assert "cancelled" in failed.args[0]
    folder = PacsCache().study_dir(archive.studies["ACC-1002"])
    assert list(folder.glob(TEMP_GLOB)) == []
    assert not (folder / MARKER).exists()
    assert dialog.retrieve_button.isEnabled()
    assert window.nav.loaded is None  # nothing was opened


def test_clear_pacs_cache(qtbot, make_window):
    cache = PacsCache()
    cache.mark_complete("1.2.3", [cache.store("1.2.3", "1.2.3.4", b"x" * 10)], "all")
    window = make_window()
    window.commands.clear_pacs_cache()
    qtbot.waitUntil(lambda: cache.studies() == [], timeout=FINDINGS_TIMEOUT_MS)


def test_screenshot_from_pacs_by_accession(archive, tmp_path, tiny_model):
    out = tmp_path / "view.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path),
               CHEXNET_HOME=str(tmp_path / "chexnet"), CHEXNET_CACHE=str(tmp_path / "c"))
    result = subprocess.run(
        [sys.executable, "-m", "chexnet.app.main", "--pacs", archive.address, "--accession",
         "ACC-1003", "--model", str(tiny_model), "--screenshot", str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000
    bad = subprocess.run(
        [sys.executable, "-m", "chexnet.app.main", "--pacs", archive.address, "--accession",
         "NO-SUCH", "--model", str(tiny_model), "--screenshot", str(out)],
        env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    assert "no study has this accession number" in bad.stderr
