"""Batch-folder screening: files -> decode workers -> batches -> engine -> journal -> worklist.

The Python API the CLI (``chexnet screen``) and the viewer's worklist both call::

    from chexnet.inference.screen_pipeline import screen

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
import contextlib
import hashlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pebble

from . import screen_forkserver
from .cam import blend, cam_on_image, colourise
from .dicom_reader import DEFAULT_MAX_PIXELS
from .engine import MIN_SEEN_FRACTION, Engine, file_sha256
from .models import resolve_model
from .preprocess import CropBox, normalise
from .screen_decode import DecodeOutcome, DecodeRequest, decode, worker_init, write_jpeg
from .screen_discovery import InputFile, ScreenConfigError, Shard, discover, parse_shard
from .screen_journal import JOURNAL_NAME, JournalContent, JournalWriter, read_journal
from .screen_report import REPORT_NAME, counts_of, render_report
from .screen_results import (
    RunModel,
    ScreenRow,
    csv_text,
    row_from_record,
    validate_priority,
    worklist,
    write_atomic,
)
from .tta import merge_cams, merge_probs

log = logging.getLogger(__name__)

CSV_NAME = "results.csv"
THUMBS = "thumbs"
WORKER_LOG = "decode_workers.log"
LOCK_NAME = ".screen.lock"
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
    errors: list[ScreenRow] = field(default_factory=list)

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
    files = discover(inputs, shard)
    if not files:
        raise ScreenConfigError("no files found in the given input(s)" +
                                (f" for shard {shard}" if shard else ""))
    out = Path(out_dir)
    package = resolve_model(model)
    if tta is None and not fresh:  # resuming: keep the augmentation the journal was made with
        header = read_journal(out / JOURNAL_NAME).header
        if header and header.get("model", {}).get("sha256") == file_sha256(package):
            tta = header.get("tta")
    try:
        engine = Engine(package, device=device, batch_size=batch_size, tta=tta)
    except ValueError as err:  # an unknown --tta
        raise ScreenConfigError(str(err)) from None
    try:
        validate_priority(priority, engine.labels)
    except ValueError as err:
        raise ScreenConfigError(str(err)) from None
    out.mkdir(parents=True, exist_ok=True)
    with _only_run_in(out):
        journal = _open_journal(out, engine, include_phi, fresh, require_journal)
        run = _Run(files, out, engine, journal, priority=priority, include_phi=include_phi,
                   retry_failed=retry_failed, max_pixels=max_pixels, on_row=on_row,
                   on_progress=on_progress, cancel=cancel or threading.Event(),
                   started=started, shard=shard, rebuild_every_s=rebuild_every_s)
        try:
            run.execute(workers or os.cpu_count() or 1, timeout_s)
        finally:
            run.writer.close()
        rows = run.rebuild()
    errors = [r for r in rows if r.status == "error"]
    return ScreenSummary(out, len(files), run.resumed, run.processed, counts_of(rows),
                         time.monotonic() - started, run.cancel.is_set(), run.model,
                         out / CSV_NAME, out / REPORT_NAME, errors)


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


@contextlib.contextmanager
def _only_run_in(out: Path) -> Iterator[None]:
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


def _open_journal(out: Path, engine: Engine, include_phi: bool, fresh: bool,
                  require_journal: bool) -> tuple[JournalContent, dict]:
    path = out / JOURNAL_NAME
    if fresh:
        for name in (JOURNAL_NAME, CSV_NAME, REPORT_NAME):
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
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
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
        pool = pebble.ProcessPool(max_workers=workers, context=_mp_context(self.out / WORKER_LOG),
                                  initializer=worker_init)
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
                buffer.append((item, _outcome(item, future, timeout_s)))
                analysed = sum(o.kind == "analyse" for _i, o in buffer)
                if analysed >= self.engine.batch_size or len(buffer) >= 4 * self.engine.batch_size:
                    self._flush(buffer)
                    buffer = []
            self._flush(buffer)
            finished = not queue
        finally:
            _shut_down(pool, graceful=finished)

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
        for i, scored in zip(todo, self._score([buffer[i][1] for i in todo]), strict=True):
            records[i] = self._scored(buffer[i][0], buffer[i][1], *scored)
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

    def _score(self, outcomes: list[DecodeOutcome]
               ) -> list[tuple[np.ndarray, np.ndarray, CropBox, float]]:
        """(probabilities, CAMs, crop box, share of the image seen) per image, as
        ``Engine.predict`` computes them (plain centre crop, or its test-time augmentation), from
        the inputs the workers prepared; ``batch_size`` model inputs per run call."""
        if not outcomes:
            return []
        spec = self.engine.card.preprocess
        xs = [o.tta.x if o.tta is not None else normalise(o.crop_u8, spec)[None]
              for o in outcomes]
        stacked = np.concatenate(xs)
        step = self.engine.batch_size
        outs = [self.engine.run(stacked[i:i + step]) for i in range(0, len(stacked), step)]
        probs = np.concatenate([r.probs for r in outs])
        cams = np.concatenate([r.cams for r in outs])
        scored, at = [], 0
        for o, x in zip(outcomes, xs, strict=True):
            k = len(x)
            if o.tta is None:
                box = CropBox(*o.crop_box)
                h, w = o.image_shape
                seen = (box.x1 - box.x0) * (box.y1 - box.y0) / (h * w)
                scored.append((probs[at], cams[at], box, seen))
            else:
                merged, seen = merge_cams(cams[at:at + k], o.tta.crops, o.tta.frame, spec.size)
                scored.append((merge_probs(probs[at:at + k]), merged, o.tta.box, seen))
            at += k
        return scored

    def _scored(self, item: InputFile, o: DecodeOutcome, probs: np.ndarray, cams: np.ndarray,
                box: CropBox, seen: float) -> dict:
        rec = self._record(item, o, "ok")
        if seen < MIN_SEEN_FRACTION:  # the engine's own rule (Engine.predict)
            rec["warnings"].append(f"the model saw only the central {seen:.0%} of the image "
                                   "(its input is square)")
        rec["probabilities"] = [round(float(p), 6) for p in probs]
        labels = self.model.labels
        finding = (self.priority if self.priority in labels
                   else labels[int(np.argmax(rec["probabilities"]))])
        if o.thumb is not None:
            heat = cam_on_image(cams[labels.index(finding)], box, o.image_shape, o.thumb.shape)
            name = f"{THUMBS}/{_file_id(item.path)}_cam.jpg"
            write_jpeg(blend(o.thumb, colourise(heat, CAM_THRESHOLD, CAM_OPACITY)),
                       self.out / name)
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


def _shut_down(pool: pebble.ProcessPool, *, graceful: bool) -> None:
    """Stop the workers. After a complete run, let the pool finish starting the replacement
    of a worker it just lost (crash, timeout) before it stops: killing one half-started prints
    multiprocessing's traceback on stderr. On cancel or error, stop at once."""
    if graceful:
        pool.close()
        try:
            pool.join(timeout=30)
            return
        except TimeoutError:
            pass
    pool.stop()
    pool.join()


def _outcome(item: InputFile, future: cf.Future, timeout_s: float) -> DecodeOutcome:
    """A finished decode task -> its outcome; a dead or stuck worker becomes an error."""
    path = str(item.path)
    try:
        return future.result()
    except cf.TimeoutError:
        reason = (f"decoding took longer than {timeout_s:g} s and was stopped (a damaged file "
                  "or a stuck decoder); raise --timeout if the file is genuine and large")
        return DecodeOutcome(path, "error", reasons=(reason,), error_type="Timeout")
    except pebble.ProcessExpired as err:
        code = getattr(err, "exitcode", None)
        how = (f"signal {signal.Signals(-code).name}" if isinstance(code, int) and code < 0
               else f"exit code {code}")
        reason = (f"the decoder process died ({how}), e.g. a crash in a native decoder or out "
                  "of memory; the file is probably damaged")
        return DecodeOutcome(path, "error", reasons=(reason,), error_type="DecoderCrash")
    except Exception as err:  # e.g. a result that could not be sent back
        return DecodeOutcome(path, "error", error_type=type(err).__name__,
                             reasons=(f"decoding failed ({type(err).__name__}: {err})",))


def _file_id(path: Path) -> str:
    return hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:20]


def _mp_context(log_path: Path):
    """Fresh worker processes, never forks of this one (it holds ONNX Runtime's threads)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["chexnet.inference.screen_forkserver",
                                    "chexnet.inference.screen_decode"])
        _start_forkserver_logging_to(log_path)
        return ctx
    return multiprocessing.get_context("spawn")


def _start_forkserver_logging_to(log_path: Path) -> None:
    """Start the fork server (if not running yet) with its stderr, which every worker inherits,
    going to ``log_path``: native decoders write their complaints to stderr, and a worker that
    pebble stops while it is still starting prints multiprocessing's traceback there. Neither
    belongs on the user's terminal: what a worker has to say about a file is in its row. (The
    fork server lives as long as this process, so later runs in the same process log to the
    first run's file.)"""
    from multiprocessing import forkserver

    sys.stderr.flush()
    saved = os.dup(2)
    os.environ[screen_forkserver.ENV] = "1"  # it dies with this process (see that module)
    try:
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 2)
            forkserver.ensure_running()
    finally:
        os.environ.pop(screen_forkserver.ENV, None)
        os.dup2(saved, 2)
        os.close(saved)
