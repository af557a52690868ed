"""The rooms stay rooms: import-linter contracts from pyproject.toml, and a runtime check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (dev extra)")
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_importing_the_engine_loads_no_gui_and_no_torch():
    code = ("import sys, chexnet.inference, chexnet.inference.cli.main; "
            "bad = [m for m in ('torch', 'torchvision', 'PySide6', 'pyqtgraph', "
            "'chexnet.app', 'chexnet.training') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_the_chexnet_command_line_loads_no_heavy_training_stack():
    """Building the parser loads the plugin commands' modules, but not torch, scikit-learn,
    matplotlib or Qt: `chexnet predict` starts fast and works without the train extra."""
    code = ("import sys; from chexnet.inference.cli.main import build_parser; build_parser(); "
            "bad = [m for m in ('torch', 'torchvision', 'sklearn', 'matplotlib', 'PySide6', "
            "'pyqtgraph') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"
