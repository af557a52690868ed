"""``chexnet models add`` / ``remove``: copy a verified package into the user models folder and
record it in the registry (:mod:`~chexnet.inference.package.registry`), or forget it."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path

from chexnet.inference.atomic_file import atomic_output
from chexnet.inference.errors import ModelPackageError
from chexnet.inference.package.registry import (
    RegistryEntry,
    load_registry,
    save_registry,
    user_models_dir,
)
from chexnet.inference.package.verify import open_package

PACKAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_package_name(name: str, source: Path | None = None) -> None:
    """Refuse a name that cannot be a package file name (ModelPackageError, naming ``source``)."""
    if not PACKAGE_NAME.match(name):
        raise ModelPackageError(source, f"{name!r} is not a usable package name",
                                "use letters, digits, '.', '_' or '-' (at most 64), e.g. "
                                "--name chexnet-v2")


def add_package(source: str | Path, name: str | None = None, *,
                force: bool = False) -> RegistryEntry:
    """Copy a valid package into the user models folder and record it in the registry."""
    source = Path(source).expanduser()
    name = name or source.stem
    check_package_name(name, source)
    if not source.is_file():
        raise ModelPackageError(source, "model package not found", "check the path")
    # every check but the registered hash, which is being renewed: a changed registered file
    # may be re-registered as it is now
    package = open_package(source, check_registry=False)
    entries = load_registry()
    folder = user_models_dir()
    target = folder / f"{name}.onnx"
    if not force and (name in entries or target.exists()):
        raise ModelPackageError(target, f"a user package named {name!r} already exists",
                                "choose another --name, pass --force to replace it, or "
                                "`chexnet models remove` it first")
    folder.mkdir(parents=True, exist_ok=True)
    copied = hashlib.sha256()
    with atomic_output(target) as out, open(source, "rb") as src:
        for block in iter(lambda: src.read(1 << 20), b""):
            copied.update(block)
            out.write(block)
        if copied.hexdigest() != package.sha256:  # the copy is what was verified, or nothing
            raise ModelPackageError(source, "the file changed while it was being copied",
                                    "try again")
    card = package.card
    entry = RegistryEntry(name=name, file=target.name, sha256=package.sha256,
                          card_name=card.name, version=card.version, demo=bool(card.demo),
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
