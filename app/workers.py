"""Background work for the viewer: every decode and every model run happens here, never on the
GUI thread (napari's ``qthreading`` habit: connect ``returned``/``errored`` before ``start``,
one user-facing error handler, never touch a widget from a worker).

Each job carries a *token*: the study/request it was started for. The window compares it with
the token of what is shown now and drops stale results (mne-qt-browser guards its load thread
the same way), so a slow study that finishes after the user moved on cannot overwrite the view.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from chexnet.inference.errors import ChexnetError

log = logging.getLogger(__name__)


class JobSignals(QObject):
    """Signals of one job. ``returned(token, result)``, ``errored(token, message)``,
    ``finished(token)`` always last."""

    returned = Signal(object, object)
    errored = Signal(object, str)
    finished = Signal(object)


def describe_error(err: BaseException) -> str:
    """The message a reader sees: our named errors already name the file and what to do;
    anything else is unexpected and says so (the traceback goes to the debug log only)."""
    if isinstance(err, ChexnetError):
        return str(err)
    if isinstance(err, MemoryError):
        return "out of memory while reading or analysing this image"
    return f"unexpected {type(err).__name__}: {err}"


class Job(QRunnable):
    """Run ``fn(*args)`` on the pool; report by signals tagged with ``token``."""

    def __init__(self, token: Any, fn: Callable[..., Any], *args: Any) -> None:
        super().__init__()
        self.token = token
        self.fn = fn
        self.args = args
        self.signals = JobSignals()
        self.setAutoDelete(True)

    def run(self) -> None:  # runs on a pool thread
        try:
            result = self.fn(*self.args)
        except BaseException as err:  # a worker must never take the window down
            log.debug("job %s failed:\n%s", getattr(self.fn, "__name__", self.fn),
                      traceback.format_exc())
            self.signals.errored.emit(self.token, describe_error(err))
        else:
            self.signals.returned.emit(self.token, result)
        finally:
            self.signals.finished.emit(self.token)


class JobRunner(QObject):
    """Starts jobs on one thread pool and knows how many are running (for the busy indicator)."""

    busy_changed = Signal(bool)

    def __init__(self, max_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._running = 0

    def start(self, token: Any, fn: Callable[..., Any], *args: Any,
              on_result: Callable[[Any, Any], None] | None = None,
              on_error: Callable[[Any, str], None] | None = None) -> Job:
        job = Job(token, fn, *args)
        if on_result is not None:
            job.signals.returned.connect(on_result)
        if on_error is not None:
            job.signals.errored.connect(on_error)
        job.signals.finished.connect(self._done)
        self._running += 1
        if self._running == 1:
            self.busy_changed.emit(True)
        self.pool.start(job)
        return job

    @property
    def running(self) -> int:
        return self._running

    def _done(self, _token: Any) -> None:
        self._running -= 1
        if self._running == 0:
            self.busy_changed.emit(False)

    def shutdown(self, wait_ms: int = 5000) -> bool:
        """Drop queued jobs and wait a little for running ones (a decode cannot be interrupted;
        their results are ignored because the window is gone)."""
        self.pool.clear()
        return self.pool.waitForDone(wait_ms)
