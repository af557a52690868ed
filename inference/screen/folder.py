"""The screening output folder: its file names, one run at a time in it, and whether a run
starts afresh or resumes the journal already there (same model, same augmentation, same PHI
choice), or is refused with what to do instead."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from chexnet.inference.package.verify import VerifiedPackage
from chexnet.inference.priors.keys import KEY_FILE
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.screen.discovery import ScreenConfigError
from chexnet.inference.screen.journal import JOURNAL_NAME, JournalContent, read_journal
from chexnet.inference.screen.report import REPORT_NAME

CSV_NAME = "results.csv"
THUMBS = "thumbs"
WORKER_LOG = "decode_workers.log"
LOCK_NAME = ".screen.lock"


def journal_tta(out: Path, package: VerifiedPackage) -> str | None:
    """The test-time augmentation an earlier run of this package in ``out`` used (a resumed
    run keeps it), or None."""
    header = read_journal(out / JOURNAL_NAME).header
    if header and header.get("model", {}).get("sha256") == package.sha256:
        return header.get("tta")
    return None


@contextlib.contextmanager
def only_run_in(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` for the run: two runs appending to one journal would
    interleave their rows. (POSIX ``flock``; released by the kernel if the run is killed.)"""
    try:
        import fcntl
    except ImportError:  # Windows: no lock, one run per folder is then the user's care
        yield
        return
    with open(out / LOCK_NAME, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ScreenConfigError(f"{out}: another chexnet screen is writing to this folder; "
                                    "wait for it to finish or choose another --out") from None
        yield


def open_journal(out: Path, engine: Engine, include_phi: bool, fresh: bool,
                  require_journal: bool, options: dict | None = None
                  ) -> tuple[JournalContent, dict]:
    """(the journal's content, its header): a new header when starting, the old one when
    resuming. ``options`` (inputs, shard, priority...) are recorded in a new header for the
    record; they do not decide whether a run may resume."""
    path = out / JOURNAL_NAME
    if fresh:
        for name in (JOURNAL_NAME, CSV_NAME, REPORT_NAME, WORKER_LOG, KEY_FILE):  # new salt
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / THUMBS, ignore_errors=True)
    content = read_journal(path)
    card = engine.card
    header = {"model": {"name": card.name, "version": card.version, "sha256": engine.sha256,
                        "demo": card.demo},
              "labels": list(card.labels),
              "thresholds": [card.threshold(lb) for lb in card.labels],
              "threshold_rule": card.threshold_rule, "description": card.description,
              "tta": engine.tta, "thresholds_assume_tta": card.tta, "include_phi": include_phi,
              "options": options or {}, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if content.header is None:
        if require_journal:
            raise ScreenConfigError(f"--resume: {out} holds no screening journal to resume "
                                    f"({JOURNAL_NAME}); leave out --resume to start")
        if path.exists() and path.stat().st_size > 0:
            raise ScreenConfigError(f"{path} exists but is not a screening journal; choose "
                                    "another --out or pass --fresh to replace it")
        return content, header
    old = content.header.get("model", {})
    if old.get("sha256") != engine.sha256:
        raise ScreenConfigError(
            f"{out} holds a screening journal of another model ({old.get('name')} "
            f"{old.get('version')}, sha256 {str(old.get('sha256'))[:12]}); this run uses "
            f"{card.name} {card.version} (sha256 {engine.sha256[:12]}). Choose another --out, "
            "or pass --fresh to discard the earlier results")
    if content.header.get("tta", "none") != engine.tta:
        raise ScreenConfigError(f"{out} was screened with test-time augmentation "
                                f"{content.header.get('tta', 'none')}, this run uses "
                                f"{engine.tta}; resume it with --tta "
                                f"{content.header.get('tta', 'none')}, or choose another --out, "
                                "or pass --fresh")
    if bool(content.header.get("include_phi")) != include_phi:
        was = "with" if content.header.get("include_phi") else "without"
        raise ScreenConfigError(f"{out} was screened {was} --include-phi; resume it the same "
                                "way, or choose another --out, or pass --fresh")
    return content, content.header


