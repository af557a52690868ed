"""Batch-folder screening: files -> decode workers -> batches -> engine -> journal -> worklist.

The Python API the CLI (``chexnet screen``) and the viewer's worklist both call::

    from chexnet.inference.screen.pipeline import screen

    summary = screen(["/data/export"], "/data/worklist", model=None, device="auto",
                     on_row=lambda row: ..., on_progress=lambda p: ..., cancel=threading.Event())

``screen(inputs, out_dir, *, model=None, device="auto", workers=None, batch_size=8,
timeout_s=60.0, priority="max-above-threshold", shard=None, include_phi=False,
retry_failed=False, fresh=False, require_journal=False, max_pixels=DEFAULT_MAX_PIXELS,
tta=None, dicom_out=None, on_row=None, on_progress=None, cancel=None, rebuild_every_s=60.0,
priors=()) -> ScreenSummary`` (``tta``: test-time augmentation, default the model card's, as
in ``Engine``).

* ``dicom_out``: a folder that receives, per analysed image, a DICOM Structured Report and a
  heat-map Secondary Capture (:mod:`chexnet.inference.dicom_out`), flat, ``<SOPInstanceUID>.dcm``.
  They are written before the image's row is journaled, and the row records their absolute
  paths (``dicom_sr``, ``dicom_sc``); a resumed run leaves journaled rows and their files
  alone. A DICOM node sends the folder as it is.

* ``priors``: folders (read-only) whose studies of the inputs' patients are scored by the same
  engine as candidate priors (never rows). Every row gets prior columns: its most recent
  analysed prior among the inputs and these folders (:mod:`.prior_columns`).

* ``on_row(row: ScreenRow)`` is called in the calling thread for each image as soon as its
  result is in the journal (``row.rank`` is None then: the order is known only at the end; the
  final order is :func:`read_worklist`'s). ``on_progress(p: ScreenProgress)`` after each batch.
* ``cancel`` (a :class:`threading.Event`): when set, the run finishes the images already
  decoded, writes them to the journal, rebuilds the CSV and report, stops the workers and
  returns with ``summary.cancelled``; the next call with the same ``out_dir`` resumes.
* Raises :class:`ScreenConfigError` for a run that cannot start (bad shard or priority, missing
  input, ``out_dir`` holding another model's journal...), ``ModelPackageError`` /
  ``DeviceUnavailableError`` from the engine. A bad *file* never raises: it becomes a row.
* No Qt here: a viewer calls this from a worker thread and forwards the callbacks as signals.

How it works: files are decoded in worker processes (pebble, one task per file with a
timeout), so a decoder that crashes, hangs or runs out of memory costs that file only (row
status ``error``). Results are consumed in discovery order, so "which copy of a duplicate is
kept" (the first) and the journal's content do not depend on timing: the journal is always a
prefix of the run, and a resumed run ends with the same CSV as an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.screen.discovery import (
    ScreenConfigError,
    Shard,
    discover,
    discover_priors,
    parse_shard,
)
from chexnet.inference.screen.folder import (
    CSV_NAME,
    journal_tta,
    only_run_in,
    open_journal,
)
from chexnet.inference.screen.journal import (
    JOURNAL_NAME,
    read_journal,
)
from chexnet.inference.screen.report import REPORT_NAME, counts_of
from chexnet.inference.screen.results import (
    RunModel,
    ScreenRow,
    validate_priority,
    worklist,
)
from chexnet.inference.screen.run import ScreeningRun, ScreenProgress
from chexnet.inference.status import Status

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0

__all__ = ["ScreenConfigError", "ScreenProgress", "ScreenRow", "ScreenSummary", "read_worklist",
           "screen"]


@dataclass
class ScreenSummary:
    out_dir: Path
    total: int
    resumed: int  # rows already in the journal when the run started
    processed: int
    counts: dict[str, int]
    duration_s: float
    cancelled: bool = False
    model: RunModel | None = None
    csv_path: Path | None = None
    report_path: Path | None = None
    rows: list[ScreenRow] = field(default_factory=list)  # this input's worklist, ranked
    model_chosen_by: str = ""  # --model, user default or bundled default
    providers: tuple[str, ...] = ()  # ONNX Runtime execution providers actually used, first wins
    batch_size: int = 0
    workers: int = 0  # decode processes
    priors_scored: int = 0  # of ``processed``: --priors files scored for comparison (no rows)

    @property
    def errors(self) -> list[ScreenRow]:
        return [r for r in self.rows if r.status is Status.ERROR]

    @property
    def images_per_s(self) -> float:
        return self.processed / self.duration_s if self.duration_s > 0 else 0.0

    def text(self) -> str:
        c = self.counts
        head = "cancelled" if self.cancelled else "done"
        resumed = f" ({self.resumed} from an earlier run)" if self.resumed else ""
        priors = f" + {self.priors_scored} --priors files" if self.priors_scored else ""
        return (f"{head}: {c['total']} of {self.total} images{resumed}: {c['ok']} analysed, "
                f"{c['not_analysed']} not analysed, {c['error']} errors, {c['duplicate']} "
                f"duplicates; this run {self.processed - self.priors_scored} images{priors} "
                f"in {self.duration_s:.1f} s ({self.images_per_s:.2f} images/s)")


def screen(inputs: Sequence[str | Path], out_dir: str | Path, *, model: str | Path | None = None,
           device: str = "auto", workers: int | None = None, batch_size: int = 8,
           timeout_s: float = DEFAULT_TIMEOUT_S, priority: str = "max-above-threshold",
           shard: str | Shard | None = None, include_phi: bool = False,
           retry_failed: bool = False, fresh: bool = False, require_journal: bool = False,
           max_pixels: int = DEFAULT_MAX_PIXELS, tta: str | None = None,
           dicom_out: str | Path | None = None, on_row: Callable[[ScreenRow], None] | None = None,
           on_progress: Callable[[ScreenProgress], None] | None = None,
           cancel: threading.Event | None = None, rebuild_every_s: float = 60.0,
           engine: Engine | None = None,
           priors: Sequence[str | Path] = ()) -> ScreenSummary:
    """Screen files and folders into ``out_dir`` (see the module docstring). ``engine``: a
    ready engine to score with (a DICOM node screens study after study with one), instead of
    one made from ``model``, ``device``, ``batch_size`` and ``tta``."""
    started = time.monotonic()
    if isinstance(shard, str):
        shard = parse_shard(shard)
    if timeout_s <= 0 or batch_size < 1 or (workers is not None and workers < 1):
        raise ScreenConfigError("--timeout, --batch-size and --workers must be positive")
    files = discover(inputs, shard, exclude=Path(out_dir))
    if not files and shard is None:  # an empty shard of a small input is no mistake
        raise ScreenConfigError("no files found in the given input(s)")
    inputs_total = len(files)
    files += discover_priors(priors, files, exclude=Path(out_dir))
    out = Path(out_dir)
    if engine is None:
        package = resolve_model(model)
        if tta is None and not fresh:  # resuming: keep the journal's augmentation
            tta = journal_tta(out, package)
        try:
            # no busy-waiting ORT threads: the decode processes need the same cores (measured
            # on 80 NIH PNGs, 2 cores: 8.8 -> 11.4 images/s)
            engine = Engine(package, device=device, batch_size=batch_size, tta=tta, spin=False)
        except ValueError as err:  # an unknown --tta
            raise ScreenConfigError(str(err)) from None
    else:
        package = engine.package
        resumed_tta = None if fresh else journal_tta(out, package)
        if model is not None or tta is not None or resumed_tta not in (None, engine.tta):
            raise ScreenConfigError("screen(engine=...) takes the model and augmentation from "
                                    "the engine; this folder's journal was made with another")
    try:
        validate_priority(priority, engine.labels)
    except ValueError as err:
        raise ScreenConfigError(str(err)) from None
    out.mkdir(parents=True, exist_ok=True)
    with only_run_in(out):
        options = {"inputs": [os.path.abspath(p) for p in inputs], "shard": str(shard or ""),
                   "priority": priority, "max_pixels": max_pixels, "timeout_s": timeout_s,
                   "batch_size": batch_size, "device": device,
                   "priors": [os.path.abspath(p) for p in priors],
                   "providers": list(engine.providers)}
        journal = open_journal(out, engine, include_phi, fresh, require_journal, options)
        run = ScreeningRun(files, out, engine, journal, priority=priority,
                           include_phi=include_phi, retry_failed=retry_failed,
                           max_pixels=max_pixels, on_row=on_row, on_progress=on_progress,
                           cancel=cancel or threading.Event(), started=started, shard=shard,
                           rebuild_every_s=rebuild_every_s,
                           dicom_out=None if dicom_out is None else Path(dicom_out))
        n_workers = workers or os.cpu_count() or 1
        try:
            run.execute(n_workers, timeout_s)
        finally:
            run.writer.close()
        rows = run.rebuild()
    return ScreenSummary(out, inputs_total, run.resumed, run.processed, counts_of(rows),
                         time.monotonic() - started, run.cancel.is_set(), run.model,
                         out / CSV_NAME, out / REPORT_NAME, rows, package.chosen_by,
                         tuple(engine.providers), engine.batch_size, n_workers,
                         run.priors_scored)


def read_worklist(out_dir: str | Path, priority: str = "max-above-threshold"
                  ) -> tuple[RunModel, list[ScreenRow]]:
    """The worklist of a screening folder (every journaled row, ranked), e.g. to reopen it."""
    out = Path(out_dir)
    content = read_journal(out / JOURNAL_NAME)
    if content.header is None:
        raise ScreenConfigError(f"{out}: no screening journal ({JOURNAL_NAME}) in this folder")
    model = RunModel.from_header(content.header)
    try:
        validate_priority(priority, model.labels)
    except ValueError as err:
        raise ScreenConfigError(str(err)) from None
    return model, worklist(content.records.values(), model, priority, out)
