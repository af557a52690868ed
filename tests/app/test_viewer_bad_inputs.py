"""Opening every case of the bad-input corpus leaves the window alive, with a message naming
the file; a folder mixing them with a good image shows the good one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app.conftest import FINDINGS_TIMEOUT_MS, open_and_wait
from tests.bad_corpus import build_bad_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, rg1_uncr, rg1_j2kr) -> dict[str, Path]:
    return build_bad_corpus(tmp_path_factory.mktemp("bad"), rg1_uncr, rg1_j2kr)


def test_each_bad_file_gives_a_message_and_the_window_lives(qtbot, make_window, corpus,
                                                            nih_png):
    window = make_window()
    for name, path in corpus.items():
        count = window.messages.list.count()
        window.open_paths([path])
        qtbot.waitUntil(lambda c=count: window.messages.list.count() > c,
                        timeout=FINDINGS_TIMEOUT_MS)
        message = window.messages.messages()[-1]
        assert name in message, message
        assert "Traceback" not in message, message
        assert "unexpected" not in message, message
        assert window.isVisible()
        assert window.findings.table.rowCount() == 0
    open_and_wait(qtbot, window, nih_png)  # and it still reads a good image
    assert window.findings.table.rowCount() == 14


def test_a_folder_with_bad_files_shows_the_good_one(qtbot, make_window, corpus, tmp_path,
                                                     nih_png):
    folder = tmp_path / "mixed"
    shutil.copytree(next(iter(corpus.values())).parent, folder)
    shutil.copy(nih_png, folder / "good.png")
    window = make_window()
    open_and_wait(qtbot, window, folder)
    assert window.nav.loaded.image.path.name == "good.png"
    text = "\n".join(window.messages.messages())
    for name in ("empty.dcm", "notes.dcm", "report_sr.dcm"):  # refused while scanning headers
        assert name in text
