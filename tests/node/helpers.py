"""What the node tests share: small generated radiographs as DICOM, a pynetdicom SCU that sends
them (one association per thread), `chexnet listen` as a real process, and waiting for rows."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import Verification

from tests.inference.io.dicom_factory import make_dicom


def cr_pixels(seed: int, size: int = 256) -> np.ndarray:
    """A smooth gradient with mild texture: an image the pixel checks accept."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = (x * rng.uniform(0.2, 0.9) + y * rng.uniform(0.2, 0.9)) % 256
    return np.clip(base * 14 + rng.normal(0, 30, (size, size)) + 200, 0, 4095).astype(
        np.uint16)


def make_study(folder: Path, n: int, *, seed: int = 0, size: int = 256,
               study_uid: str | None = None) -> list[Path]:
    """``n`` CR instances of one study (12-bit, ``size`` px square)."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series = generate_uid()
    return [make_dicom(folder / f"im{seed}_{i:04d}.dcm", cr_pixels(seed * 10007 + i, size),
                       bits_stored=12, study_uid=study_uid, series_uid=series,
                       PatientID="SECRET-ID-42", PatientName="Secret^Patient")
            for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scu(ae_title: str = "TESTSCU") -> AE:
    """A Storage SCU. Its DIMSE timeout is short: pynetdicom's requestor can lose a C-STORE
    response to its own reactor thread under CPU load (pynetdicom issue 850; seen here about
    one run in three with 4 associations on 2 busy cores); the caller sends those again, as a
    PACS retries an instance it got no answer for."""
    ae = AE(ae_title=ae_title)
    ae.dimse_timeout = 5
    ae.requested_contexts = StoragePresentationContexts[:127]
    ae.add_requested_context(Verification)
    return ae


def store_files(port: int, files: Sequence[Path], *, ae_title: str = "TESTSCU",
                called: str = "CHEXNET", tls=None) -> dict[Path, int | None]:
    """C-STORE ``files`` over one association; file -> status (None: no answer / not sent)."""
    ae = scu(ae_title)
    assoc = ae.associate("127.0.0.1", port, ae_title=called,
                         tls_args=(tls, "127.0.0.1") if tls is not None else None)
    out: dict[Path, int | None] = dict.fromkeys(files)
    if not assoc.is_established:
        return out
    try:
        for f in files:
            if not assoc.is_established:
                break
            status = assoc.send_c_store(f)
            out[f] = int(status.Status) if "Status" in status else None
    finally:
        if assoc.is_established:
            assoc.release()
    return out


def store_concurrently(port: int, groups: Sequence[Sequence[Path]], *, resend: bool = False
                       ) -> dict[Path, int | None]:
    """One association (thread) per group, all at once; ``resend``: then the files that got
    no answer once more, on a new association (what a PACS does)."""
    results: dict[Path, int | None] = {}
    lock = threading.Lock()

    def send(group):
        got = store_files(port, group)
        with lock:
            results.update(got)

    threads = [threading.Thread(target=send, args=(g,)) for g in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    unanswered = [f for f, status in results.items() if status is None]
    if resend and unanswered:
        results.update(store_files(port, unanswered))
    return results


class ListenProcess:
    """`chexnet listen` in a subprocess (stdout/stderr to files), stopped by its PID."""

    def __init__(self, out: Path, *args: str, port: int = 0, allow: str = "TESTSCU") -> None:
        self.out, self.log = out, out.with_suffix(".log")
        cmd = [sys.executable, "-m", "chexnet.inference.cli", "listen", "--port", str(port),
               "--host", "127.0.0.1", "--out", str(out), "--allow-ae", allow, *args]
        self.fh = open(self.log, "ab")  # noqa: SIM115  (closed in stop())
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=self.fh, stderr=subprocess.STDOUT, env=env)
        self.port = self._wait_port()

    def _wait_port(self, timeout: float = 60) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.findall(r"on port (\d+)", self.text())
            if m:
                return int(m[-1])
            if self.proc.poll() is not None:
                raise AssertionError(f"chexnet listen exited: {self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"chexnet listen did not start: {self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.fh.close()
        return self.proc.returncode


def all_rows(out: Path) -> list[dict]:
    """Every row of every study's results.csv (each study's own CSV: the truth per study)."""
    rows = []
    for path in sorted((out / "results").glob("*/results.csv")):
        rows.extend(csv.DictReader(io.StringIO(path.read_text())))
    return rows


def wait_for_rows(out: Path, n: int, timeout: float = 120, proc: ListenProcess | None = None
                  ) -> list[dict]:
    end = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < end:
        rows = all_rows(out)
        if len(rows) >= n:
            return rows
        if proc is not None and proc.proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{len(rows)} of {n} rows" + (f"\n{proc.text()}" if proc else ""))


def wait_until(condition, timeout: float = 60, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
