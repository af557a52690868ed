"""The reader's feedback log: ``<chexnet home>/feedback/feedback.jsonl``, append-only, one JSON
event per line, each flushed and fsynced before :func:`append_event` returns.

An event is what one key press said: who (the reader's ID from the settings), when, which model
(name, version, sha256), which image (its path and SOP Instance UID; never a patient's name or
ID: the log is meant to leave the workstation with the exported labels), which finding and
what the reader said of it. Nothing is ever rewritten: a changed mind is a later event and the
latest one wins (:mod:`chexnet.app.model.feedback_labels`). The folder is
``platformdirs.user_data_dir("chexnet")/feedback`` (``$CHEXNET_HOME/feedback`` when that is
set, as for the model registry).

Crash safety, as for the screening journal: an event whose append returned is on disk. A
process killed in the middle of a write leaves at worst a torn last line; the reader skips it
(and any other line that is not a JSON object), and the next append first ends that line, so
the fragment never swallows a later event. No line is truncated or rewritten, ever.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from chexnet.inference.atomic_file import fsync_dir
from chexnet.inference.package.registry import chexnet_home
from chexnet.inference.scoring.prediction import Finding, Prediction

LOG_NAME = "feedback.jsonl"
LABELS_NAME = "feedback.csv"
SCHEMA = 1
#: What a reader can say of one finding; ``cleared`` takes back the earlier verdict.
VERDICTS = ("agree", "disagree", "missed", "cleared")
#: Events: a verdict on a finding, the image marked (un)reviewed, the image's free-text note.
KINDS = ("finding", "reviewed", "unreviewed", "note")


def feedback_dir() -> Path:
    """Where the log lives (created on the first event, not before)."""
    return chexnet_home() / "feedback"


def image_key(path: str | Path, sop_instance_uid: str | None) -> str:
    """One image however it was reached: its SOP Instance UID when it has one (the same
    DICOM read from a worklist or a folder), else its absolute path (PNG, JPEG)."""
    if sop_instance_uid:
        return f"sop:{sop_instance_uid}"
    return f"path:{os.path.abspath(path)}"


def event_key(event: dict) -> str:
    image = event.get("image") or {}
    return image_key(image.get("path", ""), image.get("sop_instance_uid"))


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def make_event(kind: str, reader: str, pred: Prediction, *, finding: Finding | None = None,
               verdict: str | None = None, note: str | None = None) -> dict:
    """One event about ``pred``'s image. A ``reviewed`` event carries the model's call on every
    finding it ranks (1: at or above its operating point), so the labels can be derived from
    the log alone: a reviewed image's findings without a verdict keep the call the reader saw
    and left standing."""
    if kind not in KINDS:
        raise ValueError(f"unknown feedback event {kind!r}")
    if kind == "finding" and (finding is None or verdict not in VERDICTS):
        raise ValueError("a finding event needs a finding and one of " + ", ".join(VERDICTS))
    event = {
        "schema": SCHEMA, "time": now_utc(), "reader": reader, "event": kind,
        "model": {"name": pred.model.name, "version": pred.model.version,
                  "sha256": pred.model.sha256},
        "image": {"path": os.path.abspath(pred.path),
                  "sop_instance_uid": pred.uids.sop_instance},
        "finding": None, "verdict": None, "note": note,
    }
    if finding is not None:
        event.update(finding=finding.label, verdict=verdict,
                     probability=round(finding.probability, 6),
                     threshold=round(finding.threshold, 6),
                     above_threshold=finding.above_threshold)
    if kind == "reviewed":
        event["model_calls"] = {f.label: int(f.above_threshold) for f in pred.ranked}
    return event


def encode(event: dict) -> bytes:
    """One line: ASCII JSON (a file name that is not valid UTF-8 is kept exactly, escaped)."""
    return (json.dumps(event, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")


def append_event(log: Path, event: dict) -> dict:
    """Append ``event`` to ``log`` and make it durable (flush + fsync; the folder too when the
    file is new) before returning it. Runs on the feedback writer's worker thread."""
    log.parent.mkdir(parents=True, exist_ok=True)
    new = not log.exists()
    fd = os.open(log, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        size = os.fstat(fd).st_size
        line = encode(event)
        if size:
            os.lseek(fd, size - 1, os.SEEK_SET)  # O_APPEND: the write still goes to the end
            if os.read(fd, 1) != b"\n":
                line = b"\n" + line  # end a torn line a killed writer left; it stays skipped
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        fsync_dir(log.parent)
    return event


@dataclass
class LogContent:
    events: list[dict] = field(default_factory=list)
    skipped_lines: int = 0  # torn or garbled lines (a killed writer's last line)


def read_events(log: Path) -> LogContent:
    """Every event in file order; a missing log is empty; lines that are not a JSON object of
    this schema (a torn last line) are counted and skipped."""
    content = LogContent()
    if not log.is_file():
        return content
    for line in log.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            content.skipped_lines += 1
            continue
        if isinstance(event, dict) and event.get("event") in KINDS and "image" in event:
            content.events.append(event)
        else:
            content.skipped_lines += 1
    return content
