"""``chexnet models get NAME``: a catalogue release -> downloaded -> converted -> registered.

The download (:mod:`.download`) needs only the standard library; the conversion needs torch, so
it is reached through the ``chexnet.importers`` entry points (``weights``: the converter,
``options``: its options dataclass), never imported: ``chexnet.inference`` does not depend on
``chexnet.training``. Downloaded files are kept in ``<chexnet home>/downloads/<name>/`` (a
second ``get`` reuses a complete one; ``--force`` converts it again).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from chexnet.inference.errors import ChexnetError, ModelPackageError
from chexnet.inference.package.card import ModelCard
from chexnet.inference.package.catalogue import CatalogueEntry
from chexnet.inference.package.download import (
    DEFAULT_TIMEOUT_S,
    HashMismatchError,
    Progress,
    download,
    part_path,
)
from chexnet.inference.package.hashing import sha256_file
from chexnet.inference.package.install import add_package, check_package_name
from chexnet.inference.package.registry import RegistryEntry, chexnet_home, load_registry

IMPORTER_GROUP = "chexnet.importers"


class ConverterUnavailableError(ChexnetError):
    """The weights were downloaded but the converter (``chexnet[train]``: torch) is missing."""


class ConversionError(ChexnetError):
    """The converter refused the file (not the format the catalogue says, damaged, ...)."""


@dataclass(frozen=True)
class Fetched:
    path: Path
    sha256: str
    size: int
    how: str  # what happened, in words: "downloaded", "resumed ...", "already downloaded"...


@dataclass(frozen=True)
class Installed:
    entry: CatalogueEntry
    name: str
    fetched: Fetched
    url: str  # "" when the file was given with --file
    registered: RegistryEntry
    card: ModelCard


def downloads_dir(entry: CatalogueEntry) -> Path:
    return chexnet_home() / "downloads" / entry.name


def download_path(entry: CatalogueEntry) -> Path:
    """Where the release's file is kept once complete (``.part`` beside it while not)."""
    return downloads_dir(entry) / entry.file


def check_name_free(name: str, force: bool) -> None:
    """Refuse before downloading when ``name`` is taken or unusable (``add_package`` checks
    again, but only after the conversion, which writes ``<name>.onnx`` first)."""
    check_package_name(name)
    if not force and name in load_registry():
        raise ModelPackageError(None, f"a user package named {name!r} already exists",
                                "use it with --model, pass --force to download and convert "
                                "it again, or --name for another name")


def fetch(entry: CatalogueEntry, url: str, *, timeout: float = DEFAULT_TIMEOUT_S,
          sha256: str | None = None, progress: Progress | None = None,
          again: bool = False) -> Fetched:
    """The release's file on disk: downloaded, resumed, or the complete one from last time."""
    dest = download_path(entry)
    pin = sha256 or entry.sha256 or None
    if dest.is_file() and not again:
        return Fetched(dest, checked_hash(dest, pin, ours=True), dest.stat().st_size,
                       "complete from an earlier run (--force downloads it again)")
    if again:  # --force: nothing from earlier runs, complete or partial
        dest.unlink(missing_ok=True)
        part_path(dest).unlink(missing_ok=True)
    had = part_path(dest).stat().st_size if part_path(dest).is_file() else 0
    got = download(url, dest, timeout=timeout, sha256=pin, progress=progress)
    how = "downloaded"
    if got.resumed_from:
        how = f"resumed: {got.resumed_from:,} bytes were already here"
    elif got.restarted:
        how = (f"downloaded again from the start: the server did not resume the "
               f"{had:,} bytes already here")
    if not got.size_checked:
        how += " (the server announced no size: not size-checked)"
    return Fetched(got.path, got.sha256, got.size, how)


def local_file(path: Path, sha256: str | None) -> Fetched:
    """A release file the user copied by hand (``--file``), checked against ``--sha256``."""
    if not path.is_file():
        raise ModelPackageError(path, "file not found", "check the path given with --file")
    return Fetched(path, checked_hash(path, sha256), path.stat().st_size, "given with --file")


def checked_hash(path: Path, pin: str | None, ours: bool = False) -> str:
    """The file's sha256, which must be ``pin`` if given; a mismatching download of ours is
    deleted (a file the user gave is never touched)."""
    digest = sha256_file(path)
    if pin and digest != pin.lower():
        if ours:
            path.unlink()
        raise HashMismatchError(f"{path}: sha256 {digest} is not the pinned {pin.lower()} "
                                f"({'the download was deleted; ' if ours else ''}a different "
                                "or damaged file: check --sha256 and where the file came from)")
    return digest


def convert_and_register(entry: CatalogueEntry, fetched: Fetched, *, name: str, url: str,
                         force: bool) -> Installed:
    """Convert the release file with the training room's importer, then ``models add`` it."""
    import_weights, options = load_converter(fetched.path)
    where = url or f"a file given with --file ({fetched.path.name})"
    opts = options(**import_kwargs(entry, options, name, description=(
        f"Release {entry.name} ({entry.source}, {entry.version}), fetched by `chexnet models "
        f"get` from {where}; source file sha256 {fetched.sha256}.")))
    with tempfile.TemporaryDirectory(prefix="convert-", dir=fetched.path.parent) as tmp:
        out = Path(tmp) / f"{name}.onnx"
        try:
            _report, card = import_weights(fetched.path, out, opts)
        except (ValueError, RuntimeError, OSError) as err:
            advice = (f"is it {entry.name}'s {entry.file}? (`chexnet models get --list`)"
                      if not url else f"the download is kept at {fetched.path}; if the URL or "
                      "mirror served another file, run again with --force")
            raise ConversionError(f"the {entry.format} converter refused it: {err} ({advice})"
                                  ) from err
        registered = add_package(out, name, force=force)
    return Installed(entry, name, fetched, url, registered, card)


def import_kwargs(entry: CatalogueEntry, options: Any, name: str,
                  description: str) -> dict[str, Any]:
    """The importer's options for ``entry``; ``variant`` (the torchxrayvision weights name) only
    where the importer has that option."""
    kwargs: dict[str, Any] = {"fmt": entry.format, "name": name, "version": entry.version,
                              "description": description}
    if entry.variant and "variant" in {f.name for f in dataclasses.fields(options)}:
        kwargs["variant"] = entry.variant
    return kwargs


def load_converter(downloaded: Path):
    """(import_weights, ImportOptions) from the ``chexnet.importers`` entry points."""
    found = {ep.name: ep for ep in entry_points(group=IMPORTER_GROUP)}
    try:
        return found["weights"].load(), found["options"].load()
    except (KeyError, ImportError) as err:
        missing = getattr(err, "name", None) or "chexnet.training"
        raise ConverterUnavailableError(
            f"converting the weights needs torch ({missing} is not installed): install "
            f"chexnet[train] to convert it; the downloaded file is at {downloaded} (then run "
            "the same command again: it will not download it again)") from err
