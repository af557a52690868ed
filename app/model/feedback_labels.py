"""From the feedback log to labels: each image's current feedback, and the labels CSV in the
training room's generic layout (``path`` + one 0/1 column per label, what ``chexnet-train`` and
``chexnet eval --labels`` read; ``training/data/labels.py``).

The latest event wins, per image and finding (a verdict), per image (reviewed or not, the
note). A finding's value: agree with a finding at or above the model's operating point -> 1,
agree with one below it -> 0; disagree -> the opposite; a finding the model missed -> 1.

Why only reviewed images, and why their other findings take the model's call: the training
loader accepts 0 or 1 in every label cell and refuses anything else (an empty cell is "label
values must be 0 or 1"), so an unknown cannot be written. An image the reader has not marked
reviewed is therefore absent from the CSV (its events stay in the log, and the export says how
many were left out). Marking an image reviewed says "I read every finding in this list": a
finding left without a verdict keeps the call the reader saw on screen (the model's, at its
operating point, recorded in the ``reviewed`` event). Columns are the labels every reviewed
image has a value for (all the model's findings when one model was used throughout).
No ``patient_id`` column: the log holds no patient data, so training splits these images as
one patient each.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.app.model.feedback_log import LABELS_NAME, LOG_NAME, event_key, read_events
from chexnet.inference.atomic_file import write_atomic

PATH_COLUMN = "path"


@dataclass
class ImageFeedback:
    """What the reader has said about one image so far."""

    key: str
    path: str
    sop_instance_uid: str | None = None
    verdicts: dict[str, dict] = field(default_factory=dict)  # label -> latest finding event
    reviewed: bool = False
    model_calls: dict[str, int] = field(default_factory=dict)  # at the latest "reviewed"
    note: str = ""

    def verdict(self, label: str) -> str | None:
        event = self.verdicts.get(label)
        return None if event is None else event["verdict"]


def apply_event(images: dict[str, ImageFeedback], event: dict) -> ImageFeedback:
    """Fold one event into ``images`` (in place); returns the image it changed."""
    key = event_key(event)
    image = event.get("image") or {}
    fb = images.get(key)
    if fb is None:
        fb = images[key] = ImageFeedback(key, image.get("path", ""))
    fb.path = image.get("path", fb.path)
    fb.sop_instance_uid = image.get("sop_instance_uid") or fb.sop_instance_uid
    kind = event.get("event")
    if kind == "finding" and event.get("finding"):
        if event.get("verdict") == "cleared":
            fb.verdicts.pop(event["finding"], None)
        else:
            fb.verdicts[event["finding"]] = event
    elif kind == "reviewed":
        fb.reviewed = True
        fb.model_calls = dict(event.get("model_calls") or {})
    elif kind == "unreviewed":
        fb.reviewed = False
    elif kind == "note":
        fb.note = event.get("note") or ""
    return fb


def fold(events: list[dict]) -> dict[str, ImageFeedback]:
    images: dict[str, ImageFeedback] = {}
    for event in events:
        apply_event(images, event)
    return images


def verdict_value(event: dict) -> int:
    """The label a verdict gives its finding (see the module's docstring)."""
    verdict, above = event["verdict"], bool(event.get("above_threshold"))
    if verdict == "missed":
        return 1
    if verdict == "agree":
        return int(above)
    return int(not above)  # disagree


def image_values(fb: ImageFeedback) -> dict[str, int]:
    """A reviewed image's labels: the model's calls, overridden by the reader's verdicts."""
    values = dict(fb.model_calls)
    values.update({label: verdict_value(ev) for label, ev in fb.verdicts.items()})
    return values


@dataclass
class LabelRows:
    labels: tuple[str, ...]
    rows: list[tuple[str, list[int]]]  # (image path, one value per label)
    not_reviewed: int  # images with feedback but not marked reviewed: left out


def label_rows(images: dict[str, ImageFeedback]) -> LabelRows:
    reviewed = [fb for fb in images.values() if fb.reviewed]
    values = [image_values(fb) for fb in reviewed]
    order: list[str] = []
    for v in values:
        order += [label for label in v if label not in order]
    labels = tuple(lb for lb in order if all(lb in v for v in values))
    rows = [(fb.path, [v[lb] for lb in labels]) for fb, v in zip(reviewed, values, strict=True)]
    return LabelRows(labels, rows, len(images) - len(reviewed))


def labels_csv(table: LabelRows) -> str:
    """The CSV text. Paths are absolute and written as they are (no spreadsheet-formula
    escaping, unlike the screening CSV: this file is read back by the training loader, which
    would take an escaped path for another file)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([PATH_COLUMN, *table.labels])
    writer.writerows([path, *vals] for path, vals in table.rows)
    return out.getvalue()


def write_labels(log: Path, target: Path) -> LabelRows:
    """Derive the labels CSV from ``log`` into ``target`` (atomic; not written when no image
    is reviewed yet: the loader refuses a CSV without rows or label columns)."""
    table = label_rows(fold(read_events(log).events))
    if table.rows and table.labels:
        write_atomic(target, labels_csv(table))
    return table


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    labels_csv: Path | None  # None: nothing reviewed yet
    log_copy: Path
    table: LabelRows


def export_feedback(log: Path, folder: Path) -> ExportResult:
    """File > Export feedback…: the labels CSV and a copy of the log into ``folder`` (on a
    worker). The copy is taken from the bytes read once, so CSV and copy agree."""
    folder.mkdir(parents=True, exist_ok=True)
    data = log.read_bytes() if log.is_file() else b""
    copy = folder / LOG_NAME
    write_atomic(copy, data)
    table = write_labels(copy, folder / LABELS_NAME)
    return ExportResult(folder, folder / LABELS_NAME if table.rows and table.labels else None,
                        copy, table)
