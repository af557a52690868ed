"""Batch-folder screening: files -> decode workers -> batches -> engine -> journal -> worklist.

The Python API the CLI (``chexnet screen``) and the viewer's worklist both call::

    from chexnet.inference.screen.pipeline import screen

    summary = screen(["/data/export"], "/data/worklist", model=None, device="auto",
                     on_row=lambda row: ..., on_progress=lambda p: ..., cancel=threading.Event())

``screen(inputs, out_dir, *, model=None, device="auto", workers=None, batch_size=8,
timeout_s=60.0, priority="max-above-threshold", shard=None, include_phi=False,
retry_failed=False, fresh=False, require_journal=False, max_pixels=DEFAULT_MAX_PIXELS,
tta=None, on_row=None, on_progress=None, cancel=None, rebuild_every_s=60.0) -> ScreenSummary``
(``tta``: test-time augmentation, default the model card's, as in ``Engine``).

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

import collections
import concurrent.futures as cf
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pebble
from PIL import Image as PILImage
from PIL import ImageDraw

from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.preprocessing import CropBox
from chexnet.inference.render.cam import blend, cam_on_image, colourise
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.prediction import Prediction
from chexnet.inference.screen.decode import DecodeOutcome, DecodeRequest, decode, write_jpeg
from chexnet.inference.screen.discovery import (
    InputFile,
    ScreenConfigError,
    Shard,
    discover,
    parse_shard,
)
from chexnet.inference.screen.folder import (
    CSV_NAME,
    THUMBS,
    WORKER_LOG,
    journal_tta,
    only_run_in,
    open_journal,
)
from chexnet.inference.screen.journal import (
    JOURNAL_NAME,
    JournalContent,
    JournalWriter,
    read_journal,
)
from chexnet.inference.screen.report import REPORT_NAME, counts_of, render_report
from chexnet.inference.screen.results import (
    RunModel,
    ScreenRow,
    csv_text,
    row_from_record,
    validate_priority,
    worklist,
    write_atomic,
)
from chexnet.inference.screen.workers import outcome_of, shut_down, start_pool

log = logging.getLogger(__name__)

CAM_THRESHOLD, CAM_OPACITY = 0.5, 0.5
DEFAULT_TIMEOUT_S = 60.0

__all__ = ["ScreenConfigError", "ScreenProgress", "ScreenRow", "ScreenSummary", "read_worklist",
           "screen"]


@dataclass(frozen=True)
class ScreenProgress:
    done: int  # rows in the journal for this input (earlier runs included)
    total: int  # files to screen in this input (this shard)
    processed: int  # rows written by this run
    elapsed_s: float
    counts: dict[str, int]

    @property
    def rate(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


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

    @property
    def errors(self) -> list[ScreenRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def images_per_s(self) -> float:
        return self.processed / self.duration_s if self.duration_s > 0 else 0.0

    def text(self) -> str:
        c = self.counts
        head = "cancelled" if self.cancelled else "done"
        resumed = f" ({self.resumed} from an earlier run)" if self.resumed else ""
        return (f"{head}: {c['total']} of {self.total} images{resumed}: {c['ok']} analysed, "
                f"{c['not_analysed']} not analysed, {c['error']} errors, {c['duplicate']} "
                f"duplicates; this run {self.processed} images in {self.duration_s:.1f} s "
                f"({self.images_per_s:.2f} images/s)")


def screen(inputs: Sequence[str | Path], out_dir: str | Path, *, model: str | Path | None = None,
           device: str = "auto", workers: int | None = None, batch_size: int = 8,
           timeout_s: float = DEFAULT_TIMEOUT_S, priority: str = "max-above-threshold",
           shard: str | Shard | None = None, include_phi: bool = False,
           retry_failed: bool = False, fresh: bool = False, require_journal: bool = False,
           max_pixels: int = DEFAULT_MAX_PIXELS, tta: str | None = None,
           on_row: Callable[[ScreenRow], None] | None = None,
           on_progress: Callable[[ScreenProgress], None] | None = None,
           cancel: threading.Event | None = None, rebuild_every_s: float = 60.0) -> ScreenSummary:
    """Screen files and folders into ``out_dir`` (see the module docstring)."""
    started = time.monotonic()
    if isinstance(shard, str):
        shard = parse_shard(shard)
    if timeout_s <= 0 or batch_size < 1 or (workers is not None and workers < 1):
        raise ScreenConfigError("--timeout, --batch-size and --workers must be positive")
    files = discover(inputs, shard, exclude=Path(out_dir))
    if not files and shard is None:  # an empty shard of a small input is no mistake
        raise ScreenConfigError("no files found in the given input(s)")
    out = Path(out_dir)
    package = resolve_model(model)
    if tta is None and not fresh:  # resuming: keep the augmentation the journal was made with
        tta = journal_tta(out, package)
    try:
        # no busy-waiting ORT threads: the decode processes need the same cores (measured on
        # 80 NIH PNGs, 2 cores: 8.8 -> 11.4 images/s)
        engine = Engine(package, device=device, batch_size=batch_size, tta=tta, spin=False)
    except ValueError as err:  # an unknown --tta
        raise ScreenConfigError(str(err)) from None
    try:
        validate_priority(priority, engine.labels)
    except ValueError as err:
        raise ScreenConfigError(str(err)) from None
    out.mkdir(parents=True, exist_ok=True)
    with only_run_in(out):
        options = {"inputs": [os.path.abspath(p) for p in inputs], "shard": str(shard or ""),
                   "priority": priority, "max_pixels": max_pixels, "timeout_s": timeout_s,
                   "batch_size": batch_size, "device": device,
                   "providers": list(engine.providers)}
        journal = open_journal(out, engine, include_phi, fresh, require_journal, options)
        run = _Run(files, out, engine, journal, priority=priority, include_phi=include_phi,
                   retry_failed=retry_failed, max_pixels=max_pixels, on_row=on_row,
                   on_progress=on_progress, cancel=cancel or threading.Event(),
                   started=started, shard=shard, rebuild_every_s=rebuild_every_s)
        try:
            run.execute(workers or os.cpu_count() or 1, timeout_s)
        finally:
            run.writer.close()
        rows = run.rebuild()
    return ScreenSummary(out, len(files), run.resumed, run.processed, counts_of(rows),
                         time.monotonic() - started, run.cancel.is_set(), run.model,
                         out / CSV_NAME, out / REPORT_NAME, rows)


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


class _Run:
    """One execution of the pipeline (state shared by the steps; see the module docstring)."""

    def __init__(self, files: list[InputFile], out: Path, engine: Engine,
                 journal: tuple[JournalContent, dict], *, priority: str, include_phi: bool,
                 retry_failed: bool, max_pixels: int, on_row, on_progress,
                 cancel: threading.Event, started: float, shard: Shard | None,
                 rebuild_every_s: float) -> None:
        content, header = journal
        self.files, self.out, self.engine = files, out, engine
        self.priority, self.include_phi, self.max_pixels = priority, include_phi, max_pixels
        self.on_row, self.on_progress, self.cancel = on_row, on_progress, cancel
        self.started, self.shard, self.rebuild_every_s = started, shard, rebuild_every_s
        self.header = {**header, "type": "header"}
        self.model = RunModel.from_header(self.header)
        self.writer = JournalWriter(out / JOURNAL_NAME, header,
                                    keep_bytes=content.valid_bytes if content.header else 0)
        wanted = {str(f.path) for f in files}
        self.records = {p: r for p, r in content.records.items() if p in wanted}
        self.pending = [f for f in files if str(f.path) not in self.records
                        or (retry_failed and self.records[str(f.path)]["status"] == "error")]
        self.resumed = len(files) - len(self.pending)
        self.kept_sop: dict[str, str] = {}
        self.kept_sha: dict[str, str] = {}
        for f in files:  # duplicates of files screened earlier are duplicates still
            rec = self.records.get(str(f.path))
            if rec and rec["status"] in ("ok", "not_analysed"):
                self._keep(rec.get("sop_instance_uid"), rec.get("sha256"), rec["path"])
        self.processed = 0
        self.last_rebuild = time.monotonic()
        pending = {str(f.path) for f in self.pending}
        self.counts = collections.Counter(r["status"] for p, r in self.records.items()
                                          if p not in pending)

    # --- the loop ------------------------------------------------------------------------------

    def execute(self, workers: int, timeout_s: float) -> None:
        if not self.pending:
            return
        (self.out / THUMBS).mkdir(exist_ok=True)
        window = max(2 * self.engine.batch_size, 4 * workers)
        pool = start_pool(workers, self.out / WORKER_LOG)
        queue: collections.deque[tuple[InputFile, cf.Future]] = collections.deque()
        todo = iter(self.pending)
        buffer: list[tuple[InputFile, DecodeOutcome]] = []
        finished = False
        try:
            for _ in range(window):
                self._submit(pool, todo, queue, timeout_s)
            while queue and not self.cancel.is_set():
                item, future = queue[0]
                while not future.done() and not self.cancel.is_set():
                    cf.wait([future], timeout=0.2)
                if not future.done():
                    break  # cancelled while waiting
                queue.popleft()
                self._submit(pool, todo, queue, timeout_s)
                buffer.append((item, outcome_of(str(item.path), future, timeout_s)))
                analysed = sum(o.kind == "analyse" for _i, o in buffer)
                if analysed >= self.engine.batch_size or len(buffer) >= 4 * self.engine.batch_size:
                    self._flush(buffer)
                    buffer = []
            self._flush(buffer)
            finished = not queue
        finally:
            shut_down(pool, graceful=finished)

    def _submit(self, pool: pebble.ProcessPool, todo, queue, timeout_s: float) -> None:
        item = next(todo, None)
        if item is None:
            return
        thumb = self.out / THUMBS / f"{_file_id(item.path)}.jpg"
        request = DecodeRequest(str(item.path), self.engine.card.preprocess, self.max_pixels,
                                str(thumb), self.include_phi, self.engine.tta)
        queue.append((item, pool.schedule(decode, args=(request,), timeout=timeout_s)))

    def _flush(self, buffer: list[tuple[InputFile, DecodeOutcome]]) -> None:
        """Score the buffer's analysable images in one batch, journal every row in order."""
        if not buffer:
            return
        records = [self._dedup(item, o) for item, o in buffer]
        todo = [i for i, (rec, (_item, o)) in enumerate(zip(records, buffer, strict=True))
                if rec is None and o.kind == "analyse"]
        predictions = self.engine.score([buffer[i][1].prepared for i in todo])
        for i, prediction in zip(todo, predictions, strict=True):
            records[i] = self._scored(buffer[i][0], buffer[i][1], prediction)
        for i, (item, o) in enumerate(buffer):
            if records[i] is None:
                records[i] = self._record(item, o, "not_analysed" if o.kind == "not_analysed"
                                          else "error")
        self.writer.append(records)
        for rec in records:
            self.records[rec["path"]] = rec
            self.counts[rec["status"]] += 1
        self.processed += len(records)
        if self.on_row is not None:
            for rec in records:
                self.on_row(row_from_record(rec, self.model, self.priority, self.out))
        if self.on_progress is not None:
            self.on_progress(ScreenProgress(len(self.files) - len(self.pending) + self.processed,
                                            len(self.files), self.processed,
                                            time.monotonic() - self.started, dict(self.counts)))
        if time.monotonic() - self.last_rebuild > self.rebuild_every_s:
            self.rebuild()

    def _dedup(self, item: InputFile, o: DecodeOutcome) -> dict | None:
        """A duplicate's record (the first copy in discovery order is kept), else None."""
        if o.kind == "error":
            return None
        kept = self.kept_sop.get(o.sop_instance_uid or "") or self.kept_sha.get(o.sha256 or "")
        if kept is not None and kept != str(item.path):
            why = ("same SOP Instance UID" if self.kept_sop.get(o.sop_instance_uid or "") == kept
                   else "same content (sha256)")
            rec = self._record(item, o, "duplicate", thumb=False)
            rec.update(reason=f"{why} as {kept}: not screened again", duplicate_of=kept)
            return rec
        self._keep(o.sop_instance_uid, o.sha256, str(item.path))
        return None

    def _keep(self, sop: str | None, sha: str | None, path: str) -> None:
        if sop:
            self.kept_sop.setdefault(sop, path)
        if sha:
            self.kept_sha.setdefault(sha, path)

    def _record(self, item: InputFile, o: DecodeOutcome, status: str, thumb: bool = True) -> dict:
        rec = {"path": str(item.path), "status": status, "reason": "; ".join(o.reasons),
               "warnings": list(o.warnings), "study_uid": o.study_uid,
               "series_uid": o.series_uid, "sop_instance_uid": o.sop_instance_uid,
               "sha256": o.sha256, "probabilities": None, "duplicate_of": None,
               "image_shape": list(o.full_shape or o.image_shape) if o.image_shape else None,
               "decoded_shape": list(o.image_shape) if o.full_shape else None,
               "thumb": (f"{THUMBS}/{_file_id(item.path)}.jpg"
                         if thumb and o.thumb is not None else None),
               "cam": None, "cam_finding": None, "error_type": o.error_type,
               "decode_s": round(o.decode_s, 4)}
        if self.include_phi:
            rec["phi"] = o.phi or {}
        return rec

    def _scored(self, item: InputFile, o: DecodeOutcome, prediction: Prediction) -> dict:
        """The journal record of an image the engine scored (``Engine.score`` of what the
        worker prepared: the very numbers and warnings ``Engine.predict`` gives), and its
        heat-map thumbnail."""
        rec = self._record(item, o, "ok")
        rec["warnings"] = list(prediction.warnings)  # the gate's, then the engine's
        rec["probabilities"] = [round(float(p), 6) for p in prediction.probabilities]
        labels = self.model.labels
        finding = (self.priority if self.priority in labels
                   else labels[int(np.argmax(rec["probabilities"]))])
        if o.thumb is not None:
            box, shape = prediction.crop_box, prediction.image_shape
            heat = cam_on_image(prediction.cams[labels.index(finding)], box, shape, o.thumb.shape)
            rgb = blend(o.thumb, colourise(heat, CAM_THRESHOLD, CAM_OPACITY))
            if not box.covers(shape):  # outline what the model saw, as predict does
                rgb = _outline(rgb, box, o.thumb.shape[0] / shape[0])
            name = f"{THUMBS}/{_file_id(item.path)}_cam.jpg"
            write_jpeg(rgb, self.out / name)
            rec.update(cam=name, cam_finding=finding)
        return rec

    # --- derived outputs -----------------------------------------------------------------------

    def rebuild(self) -> list[ScreenRow]:
        """results.csv and report.html from the journal's rows for this input, atomically."""
        self.last_rebuild = time.monotonic()
        content = read_journal(self.out / JOURNAL_NAME)
        wanted = {str(f.path) for f in self.files}
        rows = worklist([r for p, r in content.records.items() if p in wanted], self.model,
                        self.priority, self.out)
        write_atomic(self.out / CSV_NAME, csv_text(rows, self.model.labels, self.include_phi))
        elapsed = time.monotonic() - self.started
        rate = self.processed / elapsed if elapsed > 0 else 0.0
        run_text = (f"{self.processed} images screened in {elapsed:.1f} s ({rate:.2f} images/s)"
                    + (f", {self.resumed} taken from an earlier run" if self.resumed else "")
                    + (" - cancelled, resumable" if self.cancel.is_set() else ""))
        render_report(rows, self.model, self.out, mode=self.priority,
                      include_phi=self.include_phi,
                      threshold_rule=str(self.header.get("threshold_rule", "")),
                      card_description=str(self.header.get("description", "")),
                      run_text=run_text, shard=str(self.shard or ""),
                      tta=str(self.header.get("tta", "none")))
        return rows


def _outline(rgb: np.ndarray, box: CropBox, scale: float) -> np.ndarray:
    pil = PILImage.fromarray(rgb)
    ImageDraw.Draw(pil).rectangle([box.x0 * scale, box.y0 * scale, box.x1 * scale - 1,
                                   box.y1 * scale - 1], outline=(255, 255, 0), width=2)
    return np.asarray(pil)


def _file_id(path: Path) -> str:
    return hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:20]
