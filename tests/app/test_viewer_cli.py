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
