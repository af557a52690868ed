"""Results back to PACS (``--send-to AE@host:port``): every DICOM file in ``DIR/outbox`` is
C-STOREd to the destination; a file moves to ``DIR/sent`` only after a success (or warning)
status, so the outbox *is* the retry queue and survives a restart.

Why per-file exponential backoff (1 s, 2 s, 4 s ... at most 5 min) rather than a fixed retry:
a destination that is down should not be hammered, one that refuses a single object (an SOP
class it does not take) should not hold up the others, and a node that restarts simply tries
everything once more. Files are read from disk at each try (nothing is held in memory).
Log lines name files by hashes only.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE

from chexnet.inference.atomic_file import fsync_dir
from chexnet.inference.node.spool import NodeFolders, short

log = logging.getLogger(__name__)

OK_STATUSES = {0x0000, 0xB000, 0xB006, 0xB007}  # success; stored with a warning
MAX_CONTEXTS = 128  # presentation contexts one association may propose
TICK_S = 0.2


@dataclass(frozen=True)
class Destination:
    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """``AE@host:port`` -> Destination (ValueError with the expected form otherwise)."""
        m = re.fullmatch(r"([^@]{1,16})@(\[[^\]]+\]|[^:]+):(\d{1,5})", text.strip())
        if not m or not 0 < int(m.group(3)) < 65536:
            raise ValueError(f"--send-to {text!r}: expected AE@host:port, e.g. "
                             "ORTHANC@pacs.example.org:4242")
        return cls(m.group(1).strip(), m.group(2).strip("[]"), int(m.group(3)))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass
class Backoff:
    """When each file may be tried next: ``base_s * 2**(failures-1)``, capped at ``max_s``."""

    base_s: float = 1.0
    max_s: float = 300.0
    failures: dict[Path, int] = field(default_factory=dict)
    next_try: dict[Path, float] = field(default_factory=dict)

    def ready(self, path: Path, now: float) -> bool:
        return self.next_try.get(path, 0.0) <= now

    def failed(self, path: Path, now: float) -> float:
        n = self.failures[path] = self.failures.get(path, 0) + 1
        delay = min(self.max_s, self.base_s * 2 ** (n - 1))
        self.next_try[path] = now + delay
        return delay

    def done(self, path: Path) -> None:
        self.failures.pop(path, None)
        self.next_try.pop(path, None)


class Sender:
    """Drains the outbox to the destination until ``stop`` is set. ``busy()`` names the study
    being screened right now: its outbox folder is still being written, so it waits."""

    def __init__(self, folders: NodeFolders, destination: Destination, calling_ae: str,
                 stop: threading.Event, busy: Callable[[], str | None] = lambda: None,
                 backoff: Backoff | None = None) -> None:
        self.folders, self.destination, self.calling_ae = folders, destination, calling_ae
        self.stop, self.busy = stop, busy
        self.backoff = backoff or Backoff()
        self.sent_count = 0

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.sweep():
                self.stop.wait(TICK_S)

    def waiting(self) -> list[Path]:
        """Outbox files, oldest study folder first (hidden names are writes in progress)."""
        busy = self.busy()
        files = []
        for folder in sorted(p for p in self.folders.outbox.iterdir() if p.is_dir()):
            if folder.name == busy or folder.name.startswith("."):
                continue
            files.extend(sorted(p for p in folder.iterdir()
                                if p.is_file() and not p.name.startswith(".")))
        return files

    def sweep(self) -> int:
        """One association for the files whose turn it is; returns how many were sent."""
        now = time.monotonic()
        files, contexts = [], set()
        for path in self.waiting():
            if not self.backoff.ready(path, now):
                continue
            try:
                meta = read_file_meta_info(path)
                cx = (str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID))
            except Exception as err:  # not a DICOM file: it would never be accepted
                delay = self.backoff.failed(path, now)
                log.error("outbox file %s is not a DICOM file (%s); retried in %g s", name(path),
                          type(err).__name__, delay)
                continue
            if cx not in contexts and len(contexts) == MAX_CONTEXTS:
                break
            contexts.add(cx)
            files.append(path)
        if not files:
            return 0
        ae = AE(ae_title=self.calling_ae)
        for sop_class, syntax in sorted(contexts):
            ae.add_requested_context(sop_class, syntax)
        d = self.destination
        assoc = ae.associate(d.host, d.port, ae_title=d.ae_title)
        if not assoc.is_established:
            delays = [self.backoff.failed(p, now) for p in files]
            log.warning("cannot reach %s (association %s); %d file(s) retried in %g s", d,
                        "rejected" if assoc.is_rejected else "failed", len(files), min(delays))
            return 0
        sent = 0
        try:
            for path in files:
                if self.stop.is_set() or not assoc.is_established:
                    break
                sent += self._send(assoc, path)
        finally:
            if assoc.is_established:
                assoc.release()
        return sent

    def _send(self, assoc, path: Path) -> int:
        try:
            status = assoc.send_c_store(path)
            code = int(status.Status) if "Status" in status else None
        except Exception as err:  # no accepted context, a read error...
            code, why = None, type(err).__name__
        else:
            why = "no response" if code is None else f"status 0x{code:04X}"
        if code in OK_STATUSES:
            self._move_to_sent(path)
            self.backoff.done(path)
            self.sent_count += 1
            log.info("sent %s to %s", name(path), self.destination)
            return 1
        delay = self.backoff.failed(path, time.monotonic())
        log.warning("sending %s to %s failed (%s); retried in %g s", name(path),
                    self.destination, why, delay)
        return 0

    def _move_to_sent(self, path: Path) -> None:
        target = self.folders.sent / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        fsync_dir(target.parent)
        fsync_dir(path.parent)


def name(path: Path) -> str:
    """An outbox file as a log line may name it: study folder and file name, both hashed (the
    file name is the result's SOP Instance UID)."""
    return f"{path.parent.name[:8]}/{short(path.stem)}"
