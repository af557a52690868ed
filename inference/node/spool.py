"""The node's folders and the spool: where a received instance is made durable before the sender
of a C-STORE hears "success".

Layout under ``--out DIR`` (every name below ``spool``/``results``/``outbox``/``sent`` is a
hash, never a UID: UIDs are not patient data, but a study's folder name must not invite anyone
to paste it into a ticket either, and hashes keep the names short and file-system safe)::

    DIR/spool/<study key>/<instance key>.dcm     what PACS sent, byte for byte, with file meta
    DIR/results/<study key>/                     the study's screening folder (journal, CSV...)
    DIR/outbox/<study key>/*.dcm                 results as DICOM, waiting to be sent back
    DIR/sent/<study key>/*.dcm                   results the destination acknowledged
    DIR/results.csv, DIR/report.html             every study's rows, and an index of studies

A spooled file is written through :func:`~chexnet.inference.atomic_file.atomic_output` with
``durable=True`` and ``sync_dir=True``: the bytes and the rename are on disk before the handler
returns its status. The file's name is a hash of the SOP Instance UID, so an instance sent again
replaces itself instead of becoming a second row (and the screening journal, keyed by path,
never scores it twice).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.atomic_file import atomic_output, fsync_dir

SPOOL, RESULTS, OUTBOX, SENT = "spool", "results", "outbox", "sent"
SUFFIX = ".dcm"
KEY_CHARS = 20


def uid_key(uid: str) -> str:
    """A UID's stable, file-system safe stand-in: the first 20 hex digits of its sha256."""
    return hashlib.sha256(uid.strip().encode("ascii", "replace")).hexdigest()[:KEY_CHARS]


def short(uid: str) -> str:
    """What a log line may show of a UID: 8 hex digits of its hash (enough to match lines)."""
    return uid_key(uid)[:8]


@dataclass(frozen=True)
class NodeFolders:
    """The node's folders under one root (absolute: the screening journal keys files by their
    absolute path, so the root must not move between runs)."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> NodeFolders:
        folders = cls(Path(os.path.abspath(root)))
        for name in (SPOOL, RESULTS, OUTBOX, SENT):
            (folders.root / name).mkdir(parents=True, exist_ok=True)
        return folders

    @property
    def spool(self) -> Path:
        return self.root / SPOOL

    @property
    def results(self) -> Path:
        return self.root / RESULTS

    @property
    def outbox(self) -> Path:
        return self.root / OUTBOX

    @property
    def sent(self) -> Path:
        return self.root / SENT

    def study_spool(self, study: str) -> Path:
        return self.spool / study

    def study_results(self, study: str) -> Path:
        return self.results / study

    def study_outbox(self, study: str) -> Path:
        return self.outbox / study

    def spooled_studies(self) -> list[str]:
        """Every study key with at least one spooled instance, sorted."""
        return sorted(p.name for p in self.spool.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and any(spooled_files(p)))


def spooled_files(folder: Path) -> list[Path]:
    """A study's spooled instances (temporary files of writes in progress are hidden names)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.suffix == SUFFIX and not p.name.startswith(".") and p.is_file())


def spool_instance(folders: NodeFolders, study_uid: str, sop_uid: str, data: bytes) -> Path:
    """Write one received instance (its encoded bytes, file meta included) durably; return its
    path. A new study folder is itself made durable (its parent fsynced) before the file."""
    folder = folders.study_spool(uid_key(study_uid))
    if not folder.is_dir():
        folder.mkdir(exist_ok=True)
        fsync_dir(folders.spool)
    target = folder / f"{uid_key(sop_uid)}{SUFFIX}"
    with atomic_output(target, durable=True, sync_dir=True) as fh:
        fh.write(data)
    return target
