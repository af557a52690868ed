"""One execution of the screening pipeline: the loop that feeds the decode workers, scores
their outcomes in batches, journals every row in discovery order (duplicates marked), and
rebuilds the CSV and report from the journal. :func:`~chexnet.inference.screen.pipeline.screen`
sets it up; the module docstring there says how it works and why.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pebble

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.render.overlay import compose_overlay
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.prediction import Prediction
from chexnet.inference.screen.decode import DecodeOutcome, DecodeRequest, decode, write_jpeg
from chexnet.inference.screen.dicom_files import dicom_files
from chexnet.inference.screen.discovery import (
    InputFile,
    Shard,
)
from chexnet.inference.screen.folder import (
    CSV_NAME,
    THUMBS,
    WORKER_LOG,
)
from chexnet.inference.screen.identities import RunIdentities
from chexnet.inference.screen.journal import (
    JOURNAL_NAME,
    JournalContent,
    JournalWriter,
    read_journal,
)
from chexnet.inference.screen.prior_columns import PRIOR_ROLE
from chexnet.inference.screen.prior_heatmaps import (
    CAM_OPACITY,
    CAM_THRESHOLD,
    GRID_FIELD,
    draw_missing,
    grid_record,
)
from chexnet.inference.screen.report import render_report
from chexnet.inference.screen.results import (
    RunModel,
    ScreenRow,
    csv_text,
    row_from_record,
    worklist,
)
from chexnet.inference.screen.workers import outcome_of, shut_down, start_pool
from chexnet.inference.status import Status


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



class ScreeningRun:
    """One execution of the pipeline (state shared by the steps; see the module docstring)."""

    def __init__(self, files: list[InputFile], out: Path, engine: Engine,
                 journal: tuple[JournalContent, dict], *, priority: str, include_phi: bool,
                 retry_failed: bool, max_pixels: int, on_row, on_progress,
                 cancel: threading.Event, started: float, shard: Shard | None,
                 rebuild_every_s: float, dicom_out: Path | None = None) -> None:
        content, header = journal
        self.files, self.out, self.engine = files, out, engine
        self.priority, self.include_phi, self.max_pixels = priority, include_phi, max_pixels
        self.on_row, self.on_progress, self.cancel = on_row, on_progress, cancel
        self.started, self.shard, self.rebuild_every_s = started, shard, rebuild_every_s
        self.dicom_out = dicom_out
        self.header = {**header, "type": "header"}
        self.model = RunModel.from_header(self.header)
        self.writer = JournalWriter(out / JOURNAL_NAME, header,
                                    keep_bytes=content.valid_bytes if content.header else 0)
        wanted = {str(f.path) for f in files}
        self.records = {p: r for p, r in content.records.items() if p in wanted}
        self.pending = [f for f in files if str(f.path) not in self.records
                        or (retry_failed and self.records[str(f.path)]["status"] == Status.ERROR)
                        # scored as a --priors file before, an input now: screen it as one
                        or (not f.prior and self.records[str(f.path)].get("role") == PRIOR_ROLE)]
        self.resumed = sum(not f.prior for f in files) - sum(not f.prior for f in self.pending)
        self.identities = RunIdentities(out, self.records.values())
        self.kept_sop: dict[str, str] = {}
        self.kept_sha: dict[str, str] = {}
        for f in files:  # duplicates of files screened earlier are duplicates still
            rec = self.records.get(str(f.path))
            if rec and rec["status"] in (Status.OK, Status.NOT_ANALYSED):
                self._keep(rec.get("sop_instance_uid"), rec.get("sha256"), rec["path"])
        self.processed = 0
        self.priors_scored = 0  # of processed: --priors files (no rows)
        self.dropped = 0  # --priors files of no patient of the run
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
        thumb = self.out / THUMBS / f"{file_id(item.path)}.jpg"
        # a --priors file's thumbnail is written here once it is known to be of a patient of
        # the run: no picture of another patient lands in the output folder
        request = DecodeRequest(str(item.path), self.engine.card.preprocess, self.max_pixels,
                                None if item.prior else str(thumb), self.include_phi,
                                self.engine.tta,
                                sc_base=self.dicom_out is not None)
        queue.append((item, pool.schedule(decode, args=(request,), timeout=timeout_s)))

    def _flush(self, buffer: list[tuple[InputFile, DecodeOutcome]]) -> None:
        """Score the buffer's analysable images in one batch, journal every row in order."""
        # --priors files of no patient of the run are neither scored nor journaled
        kept = [(item, o) for item, o in buffer if self.identities.keep(item, o)]
        self.dropped += len(buffer) - len(kept)  # done, for the progress count
        buffer = kept
        if not buffer:
            return
        for item, o in buffer:
            if item.prior and o.thumb is not None:
                write_jpeg(o.thumb, self.out / THUMBS / f"{file_id(item.path)}.jpg")
        records = [self._dedup(item, o) for item, o in buffer]
        todo = [i for i, (rec, (_item, o)) in enumerate(zip(records, buffer, strict=True))
                if rec is None and o.kind == "analyse"]
        predictions = self.engine.score([buffer[i][1].prepared for i in todo])
        for i, prediction in zip(todo, predictions, strict=True):
            records[i] = self._scored(buffer[i][0], buffer[i][1], prediction)
        for i, (item, o) in enumerate(buffer):
            if records[i] is None:
                records[i] = self._record(item, o, Status.NOT_ANALYSED if o.kind == "not_analysed"
                                          else Status.ERROR)
        self.writer.append(records)
        for rec in records:
            self.records[rec["path"]] = rec
            self.counts[rec["status"]] += 1
        self.processed += len(records)
        self.priors_scored += sum(rec.get("role") == PRIOR_ROLE for rec in records)
        if self.on_row is not None:
            for rec in records:
                if rec.get("role") != PRIOR_ROLE:
                    self.on_row(row_from_record(rec, self.model, self.priority, self.out))
        if self.on_progress is not None:
            self.on_progress(ScreenProgress(len(self.files) - len(self.pending) + self.processed
                                            + self.dropped,
                                            len(self.files), self.processed,
                                            time.monotonic() - self.started, dict(self.counts)))
        if time.monotonic() - self.last_rebuild > self.rebuild_every_s:
            self.rebuild()

    def _dedup(self, item: InputFile, o: DecodeOutcome) -> dict | None:
        """A duplicate's record (the first copy in discovery order is kept), else None."""
        if o.kind == "error":
            return None
        kept = self.kept_sop.get(o.uids.sop_instance or "") or self.kept_sha.get(o.sha256 or "")
        if kept is not None and kept != str(item.path):
            why = ("same SOP Instance UID" if self.kept_sop.get(o.uids.sop_instance or "") == kept
                   else "same content (sha256)")
            rec = self._record(item, o, Status.DUPLICATE, thumb=False)
            rec.update(reason=f"{why} as {kept}: not screened again", duplicate_of=kept)
            return rec
        self._keep(o.uids.sop_instance, o.sha256, str(item.path))
        return None

    def _keep(self, sop: str | None, sha: str | None, path: str) -> None:
        if sop:
            self.kept_sop.setdefault(sop, path)
        if sha:
            self.kept_sha.setdefault(sha, path)

    def _record(self, item: InputFile, o: DecodeOutcome, status: Status,
                thumb: bool = True) -> dict:
        rec = {"path": str(item.path), "status": status.value, "reason": "; ".join(o.reasons),
               "warnings": list(o.warnings), **o.uids.record(),
               "sha256": o.sha256, "probabilities": None, "duplicate_of": None,
               "image_shape": list(o.full_shape or o.image_shape) if o.image_shape else None,
               "decoded_shape": list(o.image_shape) if o.full_shape else None,
               "thumb": (f"{THUMBS}/{file_id(item.path)}.jpg"
                         if thumb and o.thumb is not None else None),
               "cam": None, "cam_finding": None, "error_type": o.error_type, "ood_score": None,
               "decode_s": round(o.decode_s, 4), **self.identities.record_fields(item, o)}
        if self.include_phi:
            rec["phi"] = o.phi or {}
        return rec

    def _scored(self, item: InputFile, o: DecodeOutcome, prediction: Prediction) -> dict:
        """The journal record of an image the engine scored (``Engine.score`` of what the
        worker prepared: the very numbers and warnings ``Engine.predict`` gives), and its
        heat-map thumbnail."""
        rec = self._record(item, o, Status.OK)
        rec["warnings"] = list(prediction.warnings)  # the gate's, then the engine's
        rec["ood_score"] = (None if prediction.ood_score is None
                            else round(float(prediction.ood_score), 4))
        if not prediction.analysed:  # refused by the model's out-of-distribution check
            rec.update(status=Status.NOT_ANALYSED.value, reason="; ".join(prediction.reasons))
            return rec
        rec["probabilities"] = [round(float(p), 6) for p in prediction.probabilities]
        if (rec.get("identity") or {}).get("patient"):  # it may be a prior: keep its CAMs
            rec[GRID_FIELD] = grid_record(prediction)
        top = prediction.top  # never a "normal" output: normal is no finding, it has no heat map
        finding = (self.priority if self.priority in self.model.labels
                   else top.label if top is not None else None)
        # a --priors file is no row: its heat map is drawn for the finding of the row it is
        # the prior of (prior_heatmaps), not for its own
        if o.thumb is not None and finding is not None and not item.prior:
            rgb = compose_overlay(o.thumb, prediction.cam(finding), prediction.crop_box,
                                  prediction.image_shape, threshold=CAM_THRESHOLD,
                                  opacity=CAM_OPACITY)
            name = f"{THUMBS}/{file_id(item.path)}_cam.jpg"
            write_jpeg(rgb, self.out / name)
            rec.update(cam=name, cam_finding=finding)
        if self.dicom_out is not None:  # written before the row is journaled: see screen()
            rec.update(dicom_files(item.path, o.sc_base, prediction, self.engine,
                                   self.dicom_out))
        return rec

    # --- derived outputs -----------------------------------------------------------------------

    def rebuild(self) -> list[ScreenRow]:
        """results.csv and report.html from the journal's rows for this input, atomically."""
        self.last_rebuild = time.monotonic()
        content = read_journal(self.out / JOURNAL_NAME)
        wanted = {str(f.path) for f in self.files}
        rows = worklist([r for p, r in content.records.items() if p in wanted], self.model,
                        self.priority, self.out)
        draw_missing((r.prior.heatmap for r in rows if r.prior is not None), self.out)
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


def file_id(path: Path) -> str:
    """A stable file name for a screened file's thumbnails (its path hashed)."""
    return hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:20]
