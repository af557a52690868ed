"""Write a whole file or nothing: a temporary file in the same folder, fsync, rename.

The one writer for everything a crash must not leave half-written: the model registry and the
user's model packages, the screening journal's header, CSV, HTML report and thumbnails, the
training run's checkpoints and JSON files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_output(target: str | Path, *, sync_dir: bool = False,
                  durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write ``target``'s new content into; on a clean exit it is flushed,
    fsynced and renamed over ``target``, on an exception it is deleted and ``target`` is left
    as it was. ``sync_dir`` also fsyncs the folder, so the rename itself survives a power cut.
    ``durable=False`` skips the fsync (still all or nothing for a crash of the process, not for
    a power cut): for files that are cheap to make again, such as screening thumbnails, where
    an fsync per file costs more than the file.

    The temporary name does not repeat ``target``'s name: a name that is not valid UTF-8 (a
    file from a foreign file system) must not make the writer fail.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".chexnet-", suffix=".tmp")
    os.fchmod(fd, _new_file_mode())  # mkstemp's 0600 would hide results from other accounts
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(target.parent)


def write_atomic(target: str | Path, data: str | bytes, *, sync_dir: bool = False) -> None:
    """Replace ``target`` with ``data`` (text is written as UTF-8, newlines untranslated)."""
    with atomic_output(target, sync_dir=sync_dir) as fh:
        fh.write(utf8_bytes(data) if isinstance(data, str) else data)


def utf8_bytes(text: str) -> bytes:
    """``text`` as UTF-8. A file name that is not valid UTF-8 (Python holds its bad bytes as
    lone surrogates) is written with its bad bytes as ``\\xNN`` escapes instead of failing the
    write: a report must name such a file, not crash on it."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")  # the file name's own bytes
        except UnicodeEncodeError:  # lone surrogates that are no escaped byte
            return text.encode("utf-8", "backslashreplace")
        return raw.decode("utf-8", "backslashreplace").encode("utf-8")


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the process's umask."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_dir(folder: str | Path) -> None:
    """Make a rename or a new file in ``folder`` durable (a no-op where folders cannot be
    opened, e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
