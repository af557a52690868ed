"""The local cache of retrieved studies: ``<cache>/pacs/<study hash>/<instance hash>.dcm``.

Why hashed names (sha256, 20 hex digits, as the node's spool): a UID in a path is an
identifier of a patient's study; a hash is not, and it is still stable, so an instance fetched
again replaces its own file. Each file is written whole or not at all (``atomic_output``): a
cancelled or killed retrieval leaves complete instances and at most temporary files, which the
next retrieval of that study removes. ``complete.json`` is written last, only when every
instance asked for is in: a study without it is a partial one, never opened as if whole; the
next retrieval keeps what is there and fetches the rest.

The cache is capped (default 2 GB): after each retrieval the least recently used studies go
(whole studies, never single files: a study is read as a whole). ``$CHEXNET_CACHE`` moves it
(tests; a faster disk), else it is the platform's per-user cache folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import platformdirs

from chexnet.inference.atomic_file import atomic_output, write_atomic

CACHE_ENV = "CHEXNET_CACHE"
DEFAULT_MAX_BYTES = 2 * 1024**3
MARKER = "complete.json"
TEMP_GLOB = ".chexnet-*.tmp"  # atomic_output's temporary names
SCOPES = ("readable", "all")  # a marker for "all" also covers "readable"


def cache_root() -> Path:
    """``$CHEXNET_CACHE/pacs`` if set, else ``<user cache dir>/chexnet/pacs``."""
    env = os.environ.get(CACHE_ENV)
    base = Path(env) if env else Path(platformdirs.user_cache_dir("chexnet", appauthor=False))
    return base / "pacs"


def uid_hash(uid: str) -> str:
    return hashlib.sha256(uid.strip().encode("ascii", "replace")).hexdigest()[:20]


class PacsCache:
    """One cache folder; every method is safe to call when the folder does not exist yet."""

    def __init__(self, root: str | Path | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.max_bytes = max_bytes

    def study_dir(self, study_uid: str) -> Path:
        return self.root / uid_hash(study_uid)

    def instance_path(self, study_uid: str, sop_uid: str) -> Path:
        return self.study_dir(study_uid) / f"{uid_hash(sop_uid)}.dcm"

    def has(self, study_uid: str, sop_uid: str) -> bool:
        return self.instance_path(study_uid, sop_uid).is_file()

    def begin(self, study_uid: str) -> Path:
        """Make the study's folder and remove what an interrupted retrieval left half-written
        (temporary files; complete instances stay)."""
        folder = self.study_dir(study_uid)
        folder.mkdir(parents=True, exist_ok=True)
        for tmp in folder.glob(TEMP_GLOB):
            tmp.unlink(missing_ok=True)
        return folder

    def store(self, study_uid: str, sop_uid: str, data: bytes) -> Path:
        """Write one instance as received (no re-encoding), whole or not at all."""
        target = self.instance_path(study_uid, sop_uid)
        target.parent.mkdir(parents=True, exist_ok=True)
        # not fsynced: a cache entry lost to a power cut is fetched again
        with atomic_output(target, durable=False) as fh:
            fh.write(data)
        return target

    def mark_complete(self, study_uid: str, files: list[Path], scope: str) -> None:
        """The marker, written last: the study (``scope``: its readable series, or all) is in."""
        body = {"version": 1, "scope": scope, "files": sorted(p.name for p in files)}
        write_atomic(self.study_dir(study_uid) / MARKER, json.dumps(body))

    def complete(self, study_uid: str, scope: str = "all") -> list[Path] | None:
        """The study's files if a finished retrieval covers ``scope`` and they are all still
        there (marked as just used), else None."""
        marker = self.study_dir(study_uid) / MARKER
        try:
            body = json.loads(marker.read_text())
            files = [marker.parent / name for name in body["files"]]
            covered = SCOPES.index(body["scope"]) >= SCOPES.index(scope)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not covered or not all(f.is_file() for f in files):
            return None
        os.utime(marker)  # least recently used: the marker's time
        return files

    def size(self) -> int:
        return sum(study_size(d) for d in self.studies())

    def studies(self) -> list[Path]:
        """Study folders, least recently used first."""
        if not self.root.is_dir():
            return []
        return sorted((d for d in self.root.iterdir() if d.is_dir()), key=last_used)

    def evict(self, keep: str | None = None) -> int:
        """Remove least recently used studies (never ``keep``'s) until the cache fits its cap;
        returns the bytes freed."""
        kept = self.study_dir(keep) if keep else None
        sizes = {d: study_size(d) for d in self.studies()}
        total, freed = sum(sizes.values()), 0
        for folder, size in sizes.items():
            if total <= self.max_bytes:
                break
            if folder == kept:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
            freed += size
        return freed

    def clear(self) -> int:
        """Remove every cached study; returns the bytes freed."""
        freed = 0
        for folder in self.studies():
            freed += study_size(folder)
            shutil.rmtree(folder, ignore_errors=True)
        return freed


def last_used(folder: Path) -> float:
    marker = folder / MARKER
    try:
        return marker.stat().st_mtime if marker.exists() else folder.stat().st_mtime
    except OSError:
        return time.time()


def study_size(folder: Path) -> int:
    total = 0
    for f in folder.iterdir() if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            total += f.stat().st_size
    return total


def clear_cache(root: str | Path | None = None) -> int:
    """Empty the PACS cache (``root``: another cache folder); returns the bytes freed."""
    return PacsCache(root).clear()
