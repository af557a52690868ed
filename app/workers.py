"""Background work for the viewer: every decode, model run and screening happens here, never on
the GUI thread (napari's ``qthreading`` habit: connect the signals before ``start``, one
user-facing error handler, never touch a widget from a worker).

Two kinds of job run on the same pool machinery: a :class:`Job` returns one result; a
:class:`StreamJob` also reports items and progress as it goes and can be cancelled (the
worklist's screening). Each job carries a *token*: the study/request it was started for. The
window compares it with the token of what is shown now and drops stale results (mne-qt-browser
guards its load thread the same way), so a slow study that finishes after the user moved on
cannot overwrite the view.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from chexnet.inference.errors import ChexnetError

log = logging.getLogger(__name__)

Slot = Callable[..., None]


class JobSignals(QObject):
    """Signals of one job. ``returned(token, result)``, ``errored(token, message)``,
    ``finished(token)`` always last."""

    returned = Signal(object, object)
    errored = Signal(object, str)
    finished = Signal(object)


class StreamSignals(JobSignals):
    """A streaming job's signals: also ``item(token, value)`` and ``progress(token, value)``."""

    item = Signal(object, object)
    progress = Signal(object, object)


def describe_error(err: BaseException) -> str:
    """The message a reader sees: our named errors already name the file and what to do;
    anything else is unexpected and says so (the traceback goes to the debug log only)."""
    if isinstance(err, ChexnetError):
        return str(err)
    if isinstance(err, MemoryError):
        return "out of memory while reading or analysing this image"
    # Not the exception's text: a library's can quote file content (patient data).
    return f"unexpected {type(err).__name__} (details in the debug log)"


class Job(QRunnable):
    """Run ``fn(*args)`` on the pool; report by signals tagged with ``token``."""

    def __init__(self, token: Any, fn: Callable[..., Any], *args: Any,
                 signals: JobSignals | None = None) -> None:
        super().__init__()
        self.token = token
        self.fn = fn
        self.args = args
        self.signals = signals or JobSignals()
        self.setAutoDelete(True)

    def run(self) -> None:  # runs on a pool thread
        try:
            result = self.fn(*self.args)
        except BaseException as err:  # a worker must never take the window down
            # the stack, not the message: a library's message can quote patient data
            log.debug("job %s failed with %s:\n%s", getattr(self.fn, "__name__", self.fn),
                      type(err).__name__, "".join(traceback.format_tb(err.__traceback__)))
            self.signals.errored.emit(self.token, describe_error(err))
        else:
            self.signals.returned.emit(self.token, result)
        finally:
            self.signals.finished.emit(self.token)


class Stream:
    """What a streaming job's function is handed: ``item(value)`` and ``progress(value)`` send
    signals to the GUI thread (safe to call from the worker), ``cancelled`` is the event the
    function polls. Plain Python, so the GUI side may keep it after the job is gone."""

    def __init__(self, token: Any, signals: StreamSignals) -> None:
        self.token = token
        self.cancelled = threading.Event()
        self._signals = signals

    def item(self, value: Any) -> None:
        self._signals.item.emit(self.token, value)

    def progress(self, value: Any) -> None:
        self._signals.progress.emit(self.token, value)

    def cancel(self) -> None:
        self.cancelled.set()


class StreamJob(Job):
    """Run ``fn(stream, *args)`` on the pool: a long job that reports as it goes."""

    def __init__(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        signals = StreamSignals()
        self.stream = Stream(token, signals)
        super().__init__(token, fn, self.stream, *args, signals=signals)


class JobRunner(QObject):
    """Starts jobs on one thread pool and knows how many are running (for the busy indicator).

    The runner holds every job until its ``finished`` signal is delivered: a job object that
    Python frees while its thread still runs loses its signals or crashes the process (napari
    and superqt keep a set of running workers for the same reason)."""

    busy_changed = Signal(bool)

    def __init__(self, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._jobs: dict[int, Job] = {}
        self._next_key = 0

    def start(self, token: Any, fn: Callable[..., Any], *args: Any,
              on_result: Slot | None = None, on_error: Slot | None = None) -> Job:
        """Run ``fn(*args)``; ``on_result(token, result)`` or ``on_error(token, message)``."""
        return self.submit(Job(token, fn, *args), on_result=on_result, on_error=on_error)

    def start_stream(self, token: Any, fn: Callable[..., Any], *args: Any,
                     on_item: Slot | None = None, on_progress: Slot | None = None,
                     on_result: Slot | None = None, on_error: Slot | None = None,
                     on_finished: Slot | None = None) -> Stream:
        """Run ``fn(stream, *args)``; returns the :class:`Stream` (to cancel it). ``on_item``
        and ``on_progress`` get ``(token, value)``; ``on_finished(token)`` comes last."""
        job = StreamJob(token, fn, *args)
        if on_item is not None:
            job.signals.item.connect(on_item)
        if on_progress is not None:
            job.signals.progress.connect(on_progress)
        self.submit(job, on_result=on_result, on_error=on_error, on_finished=on_finished)
        return job.stream

    def submit(self, job: Job, on_result: Slot | None = None, on_error: Slot | None = None,
               on_finished: Slot | None = None) -> Job:
        """Connect the handlers, then start ``job`` (never the other way round: a quick job
        could finish before a late connection)."""
        if on_result is not None:
            job.signals.returned.connect(on_result)
        if on_error is not None:
            job.signals.errored.connect(on_error)
        self._next_key += 1
        key = self._next_key  # the handler holds a number, not the job: no reference cycle
        job.signals.finished.connect(lambda token: self._done(key, token, on_finished))
        self._jobs[key] = job
        if len(self._jobs) == 1:
            self.busy_changed.emit(True)
        self.pool.start(job)
        return job

    @property
    def running(self) -> int:
        return len(self._jobs)

    def _done(self, key: int, token: Any, on_finished: Slot | None) -> None:
        """Forget the job, then its ``on_finished``: once ``running`` drops, every handler of
        the job has run."""
        self._jobs.pop(key, None)
        try:
            if on_finished is not None:
                on_finished(token)
        finally:
            if not self._jobs:
                self.busy_changed.emit(False)

    def shutdown(self, wait_ms: int = 5000) -> bool:
        """Drop queued jobs and wait a little for running ones (a decode cannot be interrupted;
        their results are ignored because the window is gone)."""
        self.pool.clear()
        return self.pool.waitForDone(wait_ms)
