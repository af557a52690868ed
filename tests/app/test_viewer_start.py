"""Which model the viewer runs and how it says so, and what the command line sets for a run.

One rule, as every command: ``--model``, else the user's default (``chexnet models default``),
else the bundled one -- never a model remembered in the viewer's settings. File > Model… switches
for the session and can make a package the default for every command. ``--threshold``,
``--opacity``, ``--finding`` and ``--window`` apply to their run and are not remembered.
"""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from chexnet.app.main import main
from chexnet.app.main_window import MainWindow
from chexnet.app.model.model_choice import ModelChoice
from chexnet.app.model.settings import StartOptions
from chexnet.app.widgets.model_dialog import (
    DEFAULT_TEXT,
    NAME_ROLE,
    REGISTER_TEXT,
    ModelDialog,
    describe_file,
)
from chexnet.inference.cli.main import main as chexnet_main
from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.inference.package.install import add_package
from chexnet.inference.package.lookup import (
    default_model_name,
    set_default_model,
    user_models_dir,
)
from tests.app.conftest import FINDINGS_TIMEOUT_MS, open_and_wait, wait_drawn
from tests.tiny_model import build_tiny_package, tiny_card


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The user's models folder and default, empty, for this test only."""
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def other(tmp_path):
    return build_tiny_package(tmp_path / "other.onnx",
                              tiny_card(name="other-model", version="2.0", demo=False), seed=7)


def started(qtbot, settings, model=None, start=None) -> MainWindow:
    window = MainWindow(settings=settings, model=model, start=start)
    qtbot.addWidget(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitUntil(lambda: window.session.engine is not None, timeout=FINDINGS_TIMEOUT_MS)
    return window


def test_start_up_follows_the_one_rule_not_a_remembered_choice(qtbot, home, settings,
                                                                tiny_model, nih_png):
    settings.store.setValue("model/spec", str(tiny_model))  # what an older viewer remembered
    bundled = started(qtbot, settings)
    assert bundled.session.engine.package.chosen_by == "bundled default"
    assert bundled.session.engine.model_id.name != "tiny-test-model"
    assert "the bundled default model" in bundled.findings.model_label.text()

    add_package(tiny_model, "tiny")
    set_default_model("tiny")
    mine = started(qtbot, settings)
    assert mine.session.engine.model_id.name == "tiny-test-model"
    assert mine.session.engine.package.chosen_by == "user default"
    assert "your default model" in mine.findings.model_label.text()
    open_and_wait(qtbot, mine, nih_png)
    mine.commands.copy_findings()  # as `chexnet predict` prints the model, how chosen included
    first_line = QApplication.clipboard().text().splitlines()[0]
    assert "tiny-test-model" in first_line
    assert first_line.endswith("(user default)")
    assert ("chosen by: user default", False) in mine.commands.legend()

    given = started(qtbot, settings, model=str(tiny_model))
    assert given.session.engine.package.chosen_by == "--model"
    assert "chosen by --model" in given.findings.model_label.text()


def test_model_dialog_switches_the_session_and_can_set_the_default(qtbot, home, settings,
                                                                    make_window, other, nih_png):
    add_package(other, "other")
    window = make_window()
    open_and_wait(qtbot, window, nih_png)
    dialog = ModelDialog(None, window.runner, window)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.list.count() >= 2, timeout=FINDINGS_TIMEOUT_MS)
    item = next(dialog.list.item(i) for i in range(dialog.list.count())
                if dialog.list.item(i).data(NAME_ROLE) == "other")
    dialog.list.setCurrentItem(item)
    assert dialog.make_default.text() == DEFAULT_TEXT
    assert not dialog.make_default.isChecked()  # for this session only, unless asked
    dialog.make_default.setChecked(True)
    choice = dialog.choice()
    assert choice == ModelChoice(str(user_models_dir() / "other.onnx"), "other", True)
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.use_choice(choice)
    assert window.session.engine.model_id.name == "other-model"
    assert "File &gt; Model" in window.findings.model_label.text()
    qtbot.waitUntil(lambda: any("'other' is now your default model for every command" in m
                                for m in window.messages.messages()),
                    timeout=FINDINGS_TIMEOUT_MS)
    assert default_model_name() == ("other", "user default")
    again = started(qtbot, settings)  # the next start, and every command, run it
    assert again.session.engine.model_id.name == "other-model"
    assert again.session.engine.package.chosen_by == "user default"


def test_a_browsed_file_is_registered_before_it_becomes_the_default(qtbot, home, make_window,
                                                                     other):
    window = make_window()
    dialog = ModelDialog(None, window.runner, window)
    qtbot.addWidget(dialog)
    dialog.list.setCurrentItem(dialog.add_row(describe_file(str(other))))
    assert dialog.make_default.text() == REGISTER_TEXT
    assert "not a registered package" in dialog.note.text()
    dialog.make_default.setChecked(True)
    choice = dialog.choice()
    assert choice.name is None
    window.use_choice(choice)
    qtbot.waitUntil(lambda: default_model_name()[0] == "other", timeout=FINDINGS_TIMEOUT_MS)
    assert (user_models_dir() / "other.onnx").is_file()
    qtbot.waitUntil(lambda: any("registered" in m for m in window.messages.messages()),
                    timeout=FINDINGS_TIMEOUT_MS)
    window.use_choice(choice)  # a second time: the name is taken, and the reader is told
    qtbot.waitUntil(lambda: any("could not make it the default model" in m and "already exists"
                                in m for m in window.messages.messages()),
                    timeout=FINDINGS_TIMEOUT_MS)
    assert default_model_name() == ("other", "user default")


def test_flags_set_the_run_and_are_not_remembered(qtbot, settings, tiny_model, nih_png):
    settings.threshold = 0.85  # what an earlier session left
    start = StartOptions(threshold=0.3, opacity=0.8, finding="pleural thickening", window="full")
    window = started(qtbot, settings, model=str(tiny_model), start=start)
    open_and_wait(qtbot, window, nih_png)
    state = window.state
    assert (state.threshold, state.opacity) == (pytest.approx(0.3), pytest.approx(0.8))
    assert state.finding == "Pleural_Thickening"  # any spelling of a label, as predict takes
    assert window.findings.labels_in_order[window.findings.table.currentRow()] == state.finding
    assert state.window.explanation == "full range"
    assert window.controls.threshold.value() == 30
    wait_drawn(qtbot, window)  # the heat map drawn is that finding's, cut at 0.3
    assert window.canvas.overlay.isVisible()
    assert settings.threshold == pytest.approx(0.85)
    assert not settings.store.contains("overlay/opacity")
    window.controls.threshold.setValue(60)  # what the reader does is remembered, as before
    assert settings.threshold == pytest.approx(0.6)
    window.findings.table.selectRow(0)  # the reader's choice of finding outlives --finding
    chosen = window.state.finding
    assert chosen != "Pleural_Thickening"
    with qtbot.waitSignal(window.findings_shown, timeout=FINDINGS_TIMEOUT_MS):
        window.use_model(str(tiny_model))
    assert window.state.finding == chosen


@pytest.mark.parametrize("extra", [[], ["--screenshot", "shot.png"]])
def test_an_unknown_finding_exits_2_as_predict_does(extra, tmp_path, tiny_model, capsys,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--sample", "--model", str(tiny_model), "--finding", "Nonsense", *extra]) == 2
    viewer = capsys.readouterr().err.strip()
    assert viewer == (f"chexnet-viewer: error: --finding 'Nonsense' is not a label of this "
                      f"model; it knows: {', '.join(CHESTXRAY14_LABELS)}")
    assert not (tmp_path / "shot.png").exists()
    assert chexnet_main(["predict", "--sample", "--model", str(tiny_model),
                         "--finding", "Nonsense"]) == 2
    predict = capsys.readouterr().err.strip()
    assert predict.split("error: ", 1)[1] == viewer.split("error: ", 1)[1]
