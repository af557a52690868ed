"""The reader's feedback as viewer state: what has been said about each image, kept in step
with the append-only log on disk (:mod:`chexnet.app.model.feedback_log`). No widgets here.

:meth:`FeedbackState.record` shows an event at once (``changed``) and appends it to the log
on the feedback writer, a worker pool of *one* thread, so events reach the file in the order
they were given (a later verdict must stay later: the latest wins) and the GUI thread never
waits for an fsync. ``written(event)`` is the acknowledgement: the event is on disk. When a
write fails the event is taken back from the state (``failed``): the screen never shows
feedback the log does not hold. After each write the labels CSV beside the log is derived
again from the whole log (same worker).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from chexnet.app.model.feedback_labels import (
    ImageFeedback,
    LabelRows,
    apply_event,
    export_feedback,
    fold,
    write_labels,
)
from chexnet.app.model.feedback_log import (
    LABELS_NAME,
    LOG_NAME,
    LogContent,
    append_event,
    feedback_dir,
    read_events,
)
from chexnet.app.workers import JobRunner


def append_and_derive(log: Path, event: dict) -> tuple[dict, LabelRows]:
    """The writer's one job per event: durable append, then the CSV again from the log."""
    append_event(log, event)
    return event, write_labels(log, log.parent / LABELS_NAME)


class FeedbackState(QObject):
    """Every image's feedback (log + this session), keyed by ``feedback_log.image_key``."""

    changed = Signal(str)          # image key: its feedback changed (shown, not yet on disk)
    written = Signal(object)       # the event, now on disk
    failed = Signal(str)           # why an event could not be written (it was taken back)
    reviewed_changed = Signal(object)  # frozenset of the image keys marked reviewed
    loaded = Signal(int)           # the log was read: lines skipped (torn or garbled)
    exported = Signal(object)      # feedback_labels.ExportResult

    def __init__(self, folder: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.folder = folder or feedback_dir()
        self.log = self.folder / LOG_NAME
        self.runner = JobRunner(max_threads=1, parent=self)
        self.events: list[dict] = []      # in file order, then this session's
        self.images: dict[str, ImageFeedback] = {}
        self._session: list[dict] = []    # recorded here (after the load began)
        self._load_from = 0

    # --- reading -------------------------------------------------------------------------
    def load(self) -> None:
        """Read the log (on the writer, before any later append)."""
        self._load_from = len(self._session)
        self.runner.start("load", read_events, self.log, on_result=self._loaded,
                          on_error=self._load_failed)

    def _loaded(self, _token, content: LogContent) -> None:
        self.events = content.events + self._session[self._load_from:]
        self._refold()
        self.loaded.emit(content.skipped_lines)

    def _load_failed(self, _token, message: str) -> None:
        self.failed.emit(f"could not read the feedback log {self.log}: {message}")

    def of(self, key: str) -> ImageFeedback | None:
        return self.images.get(key)

    def reviewed_keys(self) -> frozenset[str]:
        return frozenset(k for k, fb in self.images.items() if fb.reviewed)

    # --- writing -------------------------------------------------------------------------
    def record(self, event: dict) -> None:
        """Show ``event`` now; append it to the log on the writer."""
        self._session.append(event)
        self.events.append(event)
        was_reviewed = self.reviewed_keys()
        fb = apply_event(self.images, event)
        self.changed.emit(fb.key)
        if self.reviewed_keys() != was_reviewed:
            self.reviewed_changed.emit(self.reviewed_keys())
        self.runner.start(id(event), append_and_derive, self.log, event,
                          on_result=self._written, on_error=self._write_failed)

    def _written(self, _token, result: tuple[dict, LabelRows]) -> None:
        self.written.emit(result[0])

    def _write_failed(self, token, message: str) -> None:
        lost = next((e for e in self._session if id(e) == token), None)
        if lost is not None:
            self._session.remove(lost)
            self.events = [e for e in self.events if e is not lost]
            self._refold()
        self.failed.emit(f"could not save feedback to {self.log}: {message}")

    def _refold(self) -> None:
        before, keys = self.reviewed_keys(), set(self.images)
        self.images = fold(self.events)
        for key in keys | set(self.images):
            self.changed.emit(key)
        if self.reviewed_keys() != before:
            self.reviewed_changed.emit(self.reviewed_keys())

    def export(self, folder: str | Path) -> None:
        """The labels CSV and a copy of the log into ``folder``, on the writer: after every
        event recorded so far is on disk, so the export holds all of them."""
        self.runner.start("export", export_feedback, self.log, Path(folder),
                          on_result=lambda _t, result: self.exported.emit(result),
                          on_error=self._export_failed)

    def _export_failed(self, _token, message: str) -> None:
        self.failed.emit(f"could not export the feedback: {message}")

    def wait(self, ms: int = 5000) -> bool:
        """Wait for the queued writes (the window is closing: acknowledged events only)."""
        return self.runner.pool.waitForDone(ms)
