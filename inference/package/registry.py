"""The user's model registry, and the integrity checks every package passes before it is used.

User packages live in ``<user data dir>/models`` (``platformdirs.user_data_dir("chexnet")``, or
``$CHEXNET_HOME`` when that is set). ``chexnet models add`` copies a package there and records its
sha256, card name, version, demo flag and registration time in ``registry.json`` beside it,
written atomically (temporary file, then rename). A registered package whose file no longer has
the recorded sha256 is refused; so is any package whose ONNX graph keeps tensors in external
files outside the package's own folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import platformdirs

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.errors import ModelPackageError
from chexnet.inference.scoring.engine import Engine, file_sha256

HOME_ENV = "CHEXNET_HOME"
REGISTRY_FILE = "registry.json"
REGISTRY_SCHEMA = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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


def check_external_data(path: str | Path) -> None:
    """Refuse a package whose tensors live in external files outside its own folder (an absolute
    location, a ``..`` escape or a symlink leading out)."""
    import onnx  # imported here: parsing protobuf is needed only when a package is opened

    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises its own untyped errors
        raise ModelPackageError(path, f"it is not a readable ONNX file ({err})") from err
    folder = path.resolve().parent
    for tensor in _all_tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        if not _inside(folder, location):
            raise ModelPackageError(
                path, f"tensor {tensor.name!r} keeps its data in {location!r}, outside the "
                      "package's folder", "use a package whose external data files sit beside "
                                          "it, or one saved as a single file")


def _inside(folder: Path, location: str) -> bool:
    if not location or PurePosixPath(location).is_absolute() or \
            PureWindowsPath(location).is_absolute() or PureWindowsPath(location).drive:
        return False
    if ".." in PureWindowsPath(location).parts:  # splits on both / and \
        return False
    return (folder / location).resolve().is_relative_to(folder)


def _all_tensors(graph: Any):
    """Every TensorProto of a graph: initializers, sparse initializers, constants, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def registered_entry_for(path: Path) -> RegistryEntry | None:
    """The registry entry for a file inside the user models folder, if it has one."""
    try:
        if path.resolve().parent != user_models_dir().resolve():
            return None
    except OSError:
        return None
    return next((e for e in load_registry().values() if e.file == path.name), None)


def verify_package(path: str | Path) -> Path:
    """Refuse a package that changed since it was registered, or that reaches outside its folder
    for external data. Returns the path. (The card and graph are checked by :class:`Engine`.)"""
    path = Path(path)
    if not path.is_file():
        raise ModelPackageError(path, "model package not found",
                                "see `chexnet models` for what is installed")
    entry = registered_entry_for(path)
    if entry is not None and file_sha256(path) != entry.sha256:
        raise ModelPackageError(path, f"package {entry.name!r} changed since it was registered",
                                "re-register it with `chexnet models add PKG --name "
                                f"{entry.name} --force` if the change is wanted")
    check_external_data(path)
    return path


def add_package(source: str | Path, name: str | None = None, *,
                force: bool = False) -> RegistryEntry:
    """Copy a valid package into the user models folder and record it in the registry."""
    source = Path(source).expanduser()
    name = name or source.stem
    if not _NAME.match(name):
        raise ModelPackageError(source, f"{name!r} is not a usable package name",
                                "use letters, digits, '.', '_' or '-' (at most 64), e.g. "
                                "--name chexnet-v2")
    if not source.is_file():
        raise ModelPackageError(source, "model package not found", "check the path")
    check_external_data(source)  # a changed registered file may be re-registered as it is now
    # refuses a missing card or one the graph contradicts (the registry hash is being renewed)
    engine = Engine(source, device="cpu", check_registry=False)
    entries = load_registry()
    folder = user_models_dir()
    target = folder / f"{name}.onnx"
    if not force and (name in entries or target.exists()):
        raise ModelPackageError(target, f"a user package named {name!r} already exists",
                                "choose another --name, pass --force to replace it, or "
                                "`chexnet models remove` it first")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        sha = file_sha256(tmp)
        if sha != engine.sha256:
            raise ModelPackageError(source, "the file changed while it was being copied",
                                    "try again")
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    card = engine.card
    entry = RegistryEntry(name=name, file=target.name, sha256=sha, card_name=card.name,
                          version=card.version, demo=bool(card.demo),
                          registered=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    entries[name] = entry
    save_registry(entries)
    return entry


def remove_package(name: str) -> Path:
    """Forget a user package and delete its file from the user models folder."""
    entries = load_registry()
    entry = entries.pop(name, None)
    target = entry.path if entry else user_models_dir() / f"{name}.onnx"
    if entry is None and not target.is_file():
        known = ", ".join(sorted(entries)) or "none registered"
        raise ModelPackageError(None, f"no user model package named {name!r}",
                                f"user packages: {known}; bundled packages cannot be removed")
    if entry is not None:
        save_registry(entries)
    target.unlink(missing_ok=True)
    return target
