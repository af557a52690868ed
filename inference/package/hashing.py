"""sha256 of files: model packages (in every result), screened images (duplicates), the sources
of imported weights and of mined report labels."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    """Hash a file in 1 MB blocks (constant memory whatever its size)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """:func:`sha256_file`, computed once per (file, size, modification time): resolving,
    verifying and loading a 28 MB package all ask for it."""
    st = os.stat(path)
    return _memoised(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _memoised(path: str, _size: int, _mtime_ns: int) -> str:
    return sha256_file(path)
