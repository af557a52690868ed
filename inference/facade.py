"""Lazy package facades (PEP 562), as napari does: a package names its public API in a table
and imports a submodule only when one of its names is first used.

So ``import chexnet.inference.io`` (or a screening decode worker) does not load ONNX Runtime
just because ``chexnet.inference`` also offers :class:`Engine`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_facade(package: str, exports: dict[str, str]) -> tuple[Callable, Callable, list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``; ``exports`` maps each public
    name to the submodule (relative to ``package``) that defines it."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__, sorted(exports)
