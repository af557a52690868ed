"""When a received study is screened: once no instance of it arrived for ``--study-timeout``
seconds (PACS sends a study as a burst; screening it whole gives one results folder, one
batch, one outbox), by the same :func:`~chexnet.inference.screen.pipeline.screen` that
``chexnet screen`` runs, into ``results/<study>``.

Why screening is safe to repeat, so nothing here needs its own bookkeeping: the study's
screening journal is keyed by file path and resumes, so a study screened again (an instance
arrived late, the node was stopped or killed mid-run) scores only what is not in the journal
yet: an acknowledged instance gets exactly one row. At start-up every spooled study whose files
are not all in its journal is due at once (the clock of a study is its newest file's age).

The loop runs in the calling thread, which ``chexnet listen`` makes the main thread: the
screening fork server must be started from it to die with the node (see
:mod:`chexnet.inference.screen.forkserver`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.inference.errors import ChexnetError
from chexnet.inference.node.spool import NodeFolders, spooled_files
from chexnet.inference.node.worklist import rebuild_worklist
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.screen.journal import JOURNAL_NAME, read_journal
from chexnet.inference.screen.pipeline import screen

log = logging.getLogger(__name__)

DEFAULT_STUDY_TIMEOUT_S = 10.0
RETRY_FAILED_STUDY_S = 30.0  # a study whose screening raised is tried again after this
TICK_S = 0.1


def unscreened(folders: NodeFolders, study: str) -> list[Path]:
    """The study's spooled files that have no row in its screening journal yet."""
    done = read_journal(folders.study_results(study) / JOURNAL_NAME).records
    return [p for p in spooled_files(folders.study_spool(study)) if str(p) not in done]


@dataclass
class ScreenOptions:
    """What each study's ``screen()`` call gets besides its folders."""

    model: str | None = None
    workers: int | None = None
    device: str = "auto"
    batch_size: int = 8
    #: write DICOM results into the outbox: only when something sends them (--send-to); they
    #: cost more than the scoring (measured: 0.7 s an image for SR + SC on 2 cores)
    dicom_out: bool = False
    extra: dict = field(default_factory=dict)


class StudyScheduler:
    """Due studies -> ``screen()``, one at a time (a screening run uses every core)."""

    def __init__(self, folders: NodeFolders, options: ScreenOptions, study_timeout_s: float,
                 stop: threading.Event, on_screened: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folders, self.options, self.timeout_s = folders, options, study_timeout_s
        self.stop, self.on_screened, self.clock = stop, on_screened, clock
        self.lock = threading.Lock()
        self.last_arrival: dict[str, float] = {}  # study -> clock of its newest instance
        self.current: str | None = None  # the study being screened now
        self.screened_count = 0
        self._engine: Engine | None = None

    def arrived(self, study: str) -> None:
        """An instance of ``study`` was spooled (called from the association threads)."""
        with self.lock:
            self.last_arrival[study] = self.clock()

    def recover(self) -> int:
        """Make every spooled study with unscreened files due (after a stop or a crash);
        returns how many. Its clock is its newest file's age, so a study that was still
        arriving when the node stopped gets the rest of its timeout."""
        now_wall, now = time.time(), self.clock()
        count = 0
        for study in self.folders.spooled_studies():
            files = unscreened(self.folders, study)
            if files:
                newest = max(p.stat().st_mtime for p in files)
                with self.lock:
                    self.last_arrival.setdefault(study, now - max(0.0, now_wall - newest))
                count += 1
        return count

    def due(self) -> str | None:
        """The study that has been quiet longest, if one has been quiet for the timeout."""
        now = self.clock()
        with self.lock:
            quiet = [(t, s) for s, t in self.last_arrival.items() if now - t >= self.timeout_s]
        return min(quiet)[1] if quiet else None

    def run(self) -> None:
        """Screen due studies until ``stop`` is set (the study in hand finishes its batch)."""
        while not self.stop.is_set():
            study = self.due()
            if study is None:
                self.stop.wait(TICK_S)
                continue
            self.screen_study(study)

    def screen_study(self, study: str) -> bool:
        """Screen one study (only what its journal lacks); True when it completed. A study
        that arrives again while it is screened stays due; one that failed is retried later."""
        with self.lock:
            started_at = self.last_arrival.get(study)
            self.current = study
        try:
            ok = self._screen(study)
        finally:
            with self.lock:
                self.current = None
                if self.last_arrival.get(study) == started_at:  # nothing new meanwhile
                    if ok:
                        self.last_arrival.pop(study, None)
                    else:  # try again later: the clock restarts, shifted by the retry wait
                        self.last_arrival[study] = (self.clock() + RETRY_FAILED_STUDY_S
                                                    - self.timeout_s)
        if ok:
            self.screened_count += 1
            if self.on_screened is not None:
                self.on_screened(study)
        return ok

    def engine(self) -> Engine:
        """The one engine every study is scored with, made at the first study (loading the
        model per study cost more than scoring a one-image study)."""
        if self._engine is None:
            self._engine = Engine(resolve_model(self.options.model), device=self.options.device,
                                  batch_size=self.options.batch_size, spin=False)
        return self._engine

    def _screen(self, study: str) -> bool:
        pending = unscreened(self.folders, study)
        if not pending:
            return True
        kwargs = dict(self.options.extra)
        if self.options.dicom_out:
            kwargs["dicom_out"] = self.folders.study_outbox(study)
        started = time.monotonic()
        try:
            summary = screen([self.folders.study_spool(study)], self.folders.study_results(study),
                             workers=self.options.workers, engine=self.engine(),
                             cancel=self.stop, rebuild_every_s=3600.0, **kwargs)
        except ChexnetError as err:  # chexnet's own words: no patient data
            log.error("study %s: screening could not run: %s", study[:8], err)
            return False
        except Exception as err:
            log.error("study %s: screening failed (%s); retried in %g s", study[:8],
                      type(err).__name__, RETRY_FAILED_STUDY_S)
            return False
        c = summary.counts
        log.info("study %s screened: %d new images in %.1f s (%d analysed, %d not analysed, "
                 "%d errors)%s", study[:8], summary.processed, time.monotonic() - started,
                 c.get("ok", 0), c.get("not_analysed", 0), c.get("error", 0),
                 " - stopped, resumes on restart" if summary.cancelled else "")
        try:
            rebuild_worklist(self.folders)
        except OSError as err:
            log.warning("the combined worklist could not be written (%s)", type(err).__name__)
        return not summary.cancelled
