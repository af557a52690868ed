"""`chexnet-viewer --screenshot`: headless, real study, real model, a PNG a person can look at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from chexnet.app.main import main


def run_viewer(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(home),
               CHEXNET_HOME=str(home / "chexnet"))
    return subprocess.run([sys.executable, "-m", "chexnet.app.main", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def coloured_fraction(path: Path) -> float:
    rgb = np.asarray(PILImage.open(path).convert("RGB")).astype(int)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return float((spread > 40).mean())


def test_screenshot_of_the_sample_with_the_bundled_model(tmp_path):
    out = tmp_path / "shot.png"
    result = run_viewer(["--sample", "--screenshot", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    shot = PILImage.open(out)
    assert shot.size[0] >= 800
    assert shot.size[1] >= 600
    assert coloured_fraction(out) > 0.05  # the heat map and the DEMO banner are on it


def test_screenshot_of_an_unreadable_file_exits_1_with_the_reason(tmp_path, tiny_model):
    bad = tmp_path / "notes.dcm"
    bad.write_text("not an image")
    out = tmp_path / "shot.png"
    result = run_viewer([str(bad), "--model", str(tiny_model), "--screenshot", str(out)],
                        tmp_path)
    assert result.returncode == 1
    assert "notes.dcm" in result.stderr
    assert "Traceback" not in result.stderr
    assert out.exists()


@pytest.mark.parametrize("args", [["--screenshot", "x.png"], ["/no/such/file.dcm"]])
def test_usage_errors_exit_2(args, capsys):
    assert main(args) == 2
    assert "chexnet-viewer:" in capsys.readouterr().err


def test_help_answers_questions(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for word in ("--sample", "--screenshot", "--model", "window/level", "examples"):
        assert word in text


def test_screenshot_starts_from_the_defaults_and_flags_never_the_settings(tmp_path, tiny_model):
    """A threshold left at 0.85 by a reading session does not change a headless render, the
    render writes no settings, and the flags do change it."""
    leaked, clean = tmp_path / "leaked", tmp_path / "clean"
    ini = leaked / "chexnet" / "chexnet-viewer.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[overlay]\nthreshold=0.85\nopacity=0.1\n[display]\nwindow_preset=full\n")
    before = ini.read_bytes()
    shots = {}
    for name, home, flags in (("leaked", leaked, []), ("clean", clean, []),
                              ("flags", clean, ["--threshold", "0.85",
                                                "--finding", "pleural thickening"])):
        shots[name] = tmp_path / f"{name}.png"
        result = run_viewer(["--sample", "--model", str(tiny_model), "--screenshot",
                             str(shots[name]), *flags], home)
        assert result.returncode == 0, result.stderr
    assert ini.read_bytes() == before
    assert not (clean / "chexnet" / "chexnet-viewer.ini").exists()
    leaked_px = np.asarray(PILImage.open(shots["leaked"]).convert("RGB"))
    clean_px = np.asarray(PILImage.open(shots["clean"]).convert("RGB"))
    assert np.array_equal(leaked_px, clean_px)
    assert coloured_fraction(shots["flags"]) < coloured_fraction(shots["clean"]) - 0.01


def test_flags_are_checked_before_anything_starts(capsys):
    for flags in (["--threshold", "1.5"], ["--opacity", "x"], ["--window", "lung"]):
        with pytest.raises(SystemExit) as stop:
            main(["--sample", *flags])
        assert stop.value.code == 2
        assert "chexnet-viewer: error: argument" in capsys.readouterr().err
