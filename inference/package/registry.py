"""The user's model registry: where user packages live and what was recorded when they were added.

User packages live in ``<user data dir>/models`` (``platformdirs.user_data_dir("chexnet")``, or
``$CHEXNET_HOME`` when that is set). ``chexnet models add`` copies a package there and records its
sha256, card name, version, demo flag and registration time in ``registry.json`` beside it,
written atomically (temporary file, then rename). Adding and removing packages:
:mod:`~chexnet.inference.package.install`; refusing a registered package whose file no longer
has the recorded sha256: :mod:`~chexnet.inference.package.verify`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.errors import ModelPackageError

HOME_ENV = "CHEXNET_HOME"
REGISTRY_FILE = "registry.json"
REGISTRY_SCHEMA = 1
#: The user's default model (``chexnet models default NAME``), beside the registry.
DEFAULT_FILE = "default.json"


def chexnet_home() -> Path:
    """``$CHEXNET_HOME`` if set, else the platform's per-user data folder for chexnet."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("chexnet", appauthor=False))


def user_models_dir() -> Path:
    return chexnet_home() / "models"


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    file: str  # file name inside the user models folder
    sha256: str
    card_name: str
    version: str
    demo: bool
    registered: str  # ISO 8601, UTC

    @property
    def path(self) -> Path:
        return user_models_dir() / self.file


def load_registry() -> dict[str, RegistryEntry]:
    path = user_models_dir() / REGISTRY_FILE
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {name: RegistryEntry(**entry) for name, entry in doc["packages"].items()}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelPackageError(path, f"the model registry cannot be read ({err})",
                                "fix or delete it, then register the packages again with "
                                "`chexnet models add`") from err


def save_registry(entries: dict[str, RegistryEntry]) -> None:
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"schema": REGISTRY_SCHEMA,
           "packages": {name: asdict(e) for name, e in sorted(entries.items())}}
    write_atomic(folder / REGISTRY_FILE, (json.dumps(doc, indent=1) + "\n").encode())


def registered_entry_for(path: Path) -> RegistryEntry | None:
    """The registry entry for a file inside the user models folder, if it has one."""
    try:
        if path.resolve().parent != user_models_dir().resolve():
            return None
    except OSError:
        return None
    return next((e for e in load_registry().values() if e.file == path.name), None)


def load_default_name() -> str | None:
    """The package name the user chose as their default, or None."""
    path = user_models_dir() / DEFAULT_FILE
    if not path.is_file():
        return None
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["name"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelPackageError(path, f"the default-model file cannot be read ({err})",
                                "set it again with `chexnet models default NAME`, or clear it "
                                "with `chexnet models default --clear`") from err
    return str(name) if name else None


def save_default_name(name: str | None) -> None:
    """Record ``name`` as the user's default model (None: back to the bundled default)."""
    folder = user_models_dir()
    path = folder / DEFAULT_FILE
    if name is None:
        path.unlink(missing_ok=True)
        return
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"name": name}) + "\n")
