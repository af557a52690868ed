"""The shape of the code: what docs/architecture.md promises and import-linter cannot check.

- no module imports another module's private names (``from x import _y``, ``x._y``);
- the light subpackages stay light: importing ``chexnet.inference`` or ``.io``, or starting a
  screening decode worker, loads no ONNX Runtime (the facades are lazy, PEP 562);
- modules stay small enough to read (about 300 lines).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {"inference": "chexnet.inference", "training": "chexnet.training", "app": "chexnet.app"}
MAX_MODULE_LINES = 300


def _modules():
    for folder, package in ROOMS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield path, ".".join([package, *parts])


def _private_imports(path: Path, module: str) -> list[str]:
    """``from chexnet.x import _y`` and ``x._y`` where ``x`` names another chexnet module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, aliases = [], {}
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            if not base.startswith("chexnet"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{module}: from {base} import {alias.name}")
                aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("chexnet"):
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            found.append(f"{module}: {node.value.id}.{node.attr}")
    return found


def test_no_module_imports_a_private_name_of_another():
    offenders = [hit for path, module in _modules() for hit in _private_imports(path, module)]
    assert offenders == []


def test_the_private_name_check_sees_both_forms(tmp_path):
    """The check above would catch a violation (it is not vacuous)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from chexnet.inference.io import j2k\n"
                   "from chexnet.inference.preprocessing import _INTERPOLATION\n"
                   "x = j2k._private\n", encoding="utf-8")
    assert _private_imports(bad, "chexnet.inference.bad") == [
        "chexnet.inference.bad: from chexnet.inference.preprocessing import _INTERPOLATION",
        "chexnet.inference.bad: j2k._private"]


def test_modules_stay_small():
    sizes = {module: len(path.read_text(encoding="utf-8").splitlines())
             for path, module in _modules()}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def _loaded_after(code: str, watched: tuple[str, ...]) -> list[str]:
    probe = (f"import sys; {code}; "
             f"print([m for m in {watched!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True)
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


HEAVY = ("onnxruntime", "onnx", "torch", "PySide6", "pyqtgraph", "matplotlib", "sklearn")


@pytest.mark.parametrize("code", [
    "import chexnet.inference",
    "import chexnet.inference.io",
    "from chexnet.inference import load_image, Image, PreprocessSpec",
    # what a screening decode worker (forkserver preload) imports
    "import chexnet.inference.screen.forkserver, chexnet.inference.screen.decode",
])
def test_light_imports_load_no_runtime(code):
    assert _loaded_after(code, HEAVY) == []


def test_the_facade_loads_the_engine_on_first_use():
    loaded = _loaded_after("import chexnet.inference as c; c.Engine", ("onnxruntime",))
    assert loaded == ["onnxruntime"]
    import chexnet.inference as facade

    assert {"Engine", "load_image", "Prediction", "preprocess"} <= set(dir(facade))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = facade.Nope
