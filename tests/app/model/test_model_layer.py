"""``chexnet.app.model`` holds state, not widgets: importing any of its modules loads neither
QtWidgets nor pyqtgraph (import-linter checks pyqtgraph and our widget packages; QtWidgets,
a submodule of an external package, only this way)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys

import chexnet.app.model as model_layer

WIDGET_MODULES = ("PySide6.QtWidgets", "pyqtgraph")


def model_modules() -> list[str]:
    return sorted(f"chexnet.app.model.{m.name}"
                  for m in pkgutil.iter_modules(model_layer.__path__))


def loaded_after_importing(module: str) -> list[str]:
    probe = (f"import sys, {module}; "
             f"print(sorted({{m.split('.')[0] if m.startswith('pyqtgraph') else m "
             f"for m in sys.modules if m.startswith({WIDGET_MODULES!r})}}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True)
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_the_model_layer_is_all_there():
    names = model_modules()
    assert {"session", "view_state", "navigation", "heat", "settings",
            "window_level"} <= {n.rsplit(".", 1)[1] for n in names}


def test_no_model_module_loads_widgets():
    loaded = {module: loaded_after_importing(module) for module in model_modules()}
    assert {m: w for m, w in loaded.items() if w} == {}


def test_the_probe_sees_widgets_when_they_are_loaded():
    """The check above would catch a widget import (it is not vacuous)."""
    assert loaded_after_importing("chexnet.app.widgets.canvas") == ["PySide6.QtWidgets",
                                                                    "pyqtgraph"]
