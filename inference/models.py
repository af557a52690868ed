"""Where model packages live: the bundled ones and the user's own folder."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import platformdirs

from .errors import ModelPackageError

DEFAULT_MODEL_FILE = "default.onnx"


def bundled_models_dir() -> Path:
    return Path(str(resources.files("chexnet.resources") / "models"))


def user_models_dir() -> Path:
    return Path(platformdirs.user_data_dir("chexnet", appauthor=False)) / "models"


def available_models() -> list[Path]:
    """Bundled packages first, then the user's, each sorted by name."""
    found: list[Path] = []
    for folder in (bundled_models_dir(), user_models_dir()):
        if folder.is_dir():
            found.extend(sorted(folder.glob("*.onnx")))
    return found


def resolve_model(spec: str | Path | None) -> Path:
    """A path, a package name (file stem in the bundled or user folder), or ``None`` for the
    bundled default."""
    if spec is None:
        default = bundled_models_dir() / DEFAULT_MODEL_FILE
        if default.is_file():
            return default
        raise ModelPackageError(
            None, "no default model package is installed with this copy of chexnet",
            "pass --model PATH to a package made by `chexnet export` (see the README)")
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    for candidate in available_models():
        if candidate.stem == str(spec):
            return candidate
    names = ", ".join(p.stem for p in available_models()) or "none installed"
    raise ModelPackageError(path, "no such model package file or name",
                            f"known names: {names}")
