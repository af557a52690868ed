"""Screening step 1: the input arguments -> the ordered list of files to screen (and a shard).

Nothing is decoded here and no file content is read: recognising the kind (DICOM by content,
PNG, JPEG) and spotting duplicates happen in the decode workers, so a hostile file can never
stall or crash the main process. Discovery only fixes *which* files and *in what order*, and
that order is deterministic (inputs in the order given, each folder walked sorted), because
duplicate resolution ("the first copy is kept") and resumption rely on it.

Sharding (``--shard I/N``) hashes each file's path *relative to the input argument it was found
under*, so machines that mount the same archive at different roots agree on the split, and the
N shards cover the input exactly once.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.errors import ChexnetError
from chexnet.inference.io.study import iter_files


class ScreenConfigError(ChexnetError):
    """A screening run cannot start as asked (bad shard, missing input, another model's
    journal...). The CLI reports it as a usage error (exit code 2)."""


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, relpath: str) -> bool:
        return shard_of(relpath, self.count) == self.index


@dataclass(frozen=True)
class InputFile:
    """One file to screen: its absolute path (the journal's key) and its path relative to the
    input argument it was found under (what sharding hashes)."""

    path: Path
    relpath: str
    #: A file of ``--priors``: scored as a candidate prior of the input's patients, not a row.
    prior: bool = False


def parse_shard(text: str) -> Shard:
    """``"I/N"`` with 0 <= I < N -> :class:`Shard`."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ScreenConfigError(f"--shard {text!r}: expected I/N, e.g. 0/4 (shards are numbered "
                                "from 0)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 0 <= index < count:
        raise ScreenConfigError(f"--shard {text}: need 0 <= I < N (shards of {count} are "
                                f"numbered 0 to {max(count - 1, 0)})")
    return Shard(index, count)


def shard_of(relpath: str, count: int) -> int:
    """Stable shard number of a relative path (sha256, identical on every machine and run)."""
    digest = hashlib.sha256(relpath.replace(os.sep, "/").encode("utf-8", "surrogateescape"))
    return int.from_bytes(digest.digest()[:8], "big") % count


def discover_priors(folders: Sequence[str | Path], files: Sequence[InputFile],
                    exclude: Path | None = None) -> list[InputFile]:
    """The files of ``--priors`` folders (read-only inputs; never sharded: any shard's patient
    may have a prior there), after ``files`` and without them."""
    taken = {f.path for f in files}
    return [InputFile(f.path, f.relpath, prior=True) for f in discover(folders, None, exclude)
            if f.path not in taken]


def discover(inputs: Sequence[str | Path], shard: Shard | None = None,
             exclude: Path | None = None) -> list[InputFile]:
    """Every file under the inputs (hidden files and folders skipped), deterministic order, each
    absolute path once; only this shard's files when ``shard`` is given; nothing under
    ``exclude`` (the output folder, when it lies inside an input: its thumbnails are no input)."""
    skip = Path(os.path.abspath(exclude)) if exclude is not None else None
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise ScreenConfigError(f"no such file or folder: {', '.join(missing)} (check the path)")
    seen: set[Path] = set()
    files: list[InputFile] = []
    for inp in inputs:
        root = Path(inp)
        for path in iter_files([root]):
            rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
            absolute = Path(os.path.abspath(path))
            if absolute in seen:  # the same file reached through two input arguments
                continue
            if skip is not None and absolute.is_relative_to(skip):
                continue
            seen.add(absolute)
            if shard is None or shard.holds(rel):
                files.append(InputFile(absolute, rel))
    return files
