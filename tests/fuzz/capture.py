"""What one call prints or warns behind the caller's back, and the memory it takes.

:func:`captured` runs a block with:

* fd 2 redirected (``os.dup2``) to a temporary file, so what C libraries write to stderr is
  caught, and ``sys.stderr`` swapped for a buffer (pytest replaces it with an object that does
  not write to fd 2);
* warnings shown to the user recorded: ``simplefilter("always")`` and the stdlib's final
  ``_showwarnmsg_impl`` replaced. chexnet's per-file guard installs its own
  ``warnings.showwarning`` hook that routes library warnings into the file's notes; the hook is
  left in place (``catch_warnings(record=True)`` would bypass it), so only what gets past the
  guard to the stdlib printer is counted;
* log records of WARNING and above that reach the root logger recorded (with no handler
  configured, Python's last-resort handler would print them to stderr);
* the peak resident memory of the block: freed heap is handed back to the kernel
  (``malloc_trim``), the kernel's high-water mark is reset (``/proc/self/clear_refs``) and read
  after the block; ``growth_mb`` is that peak less the resident size before the block (what the
  block itself cost, whatever earlier cases left behind). Where that is not available,
  ``ru_maxrss`` (the process's lifetime peak) and no growth.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import logging
import os
import re
import resource
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_HWM = re.compile(rb"VmHWM:\s+(\d+)\s+kB")
_RSS = re.compile(rb"VmRSS:\s+(\d+)\s+kB")
try:
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim = _LIBC.malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


@dataclass
class Captured:
    stderr: str = ""
    warnings: list[str] = field(default_factory=list)
    log_records: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    growth_mb: float = 0.0


class _Records(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.into.append(f"{record.name}: {record.getMessage()}")
        except Exception:  # a record whose message cannot be formatted: still a record
            self.into.append(f"{record.name}: {record.msg!r}")


def _status_mb(pattern: re.Pattern) -> float | None:
    try:
        with open("/proc/self/status", "rb") as fh:
            found = pattern.search(fh.read())
    except OSError:
        return None
    return int(found.group(1)) / 1024 if found else None


def reset_peak_rss() -> bool:
    if _malloc_trim is not None:
        _malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(reset_worked: bool) -> float:
    peak = _status_mb(_HWM) if reset_worked else None
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def captured() -> Iterator[Captured]:
    out = Captured()
    for stream in (sys.stdout, sys.stderr, sys.__stderr__):
        if stream is not None:
            stream.flush()
    with tempfile.TemporaryFile() as sink:
        saved_fd = os.dup(2)
        saved_stderr = sys.stderr
        buffer = io.StringIO()
        root = logging.getLogger()
        handler = _Records(out.log_records)
        shown: list[warnings.WarningMessage] = []
        reset = reset_peak_rss()
        before = _status_mb(_RSS) if reset else None
        os.dup2(sink.fileno(), 2)
        sys.stderr = buffer
        root.addHandler(handler)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings._showwarnmsg_impl = shown.append  # what reaches the stdlib's printer
                yield out
        finally:
            root.removeHandler(handler)
            sys.stderr = saved_stderr
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            out.peak_rss_mb = peak_rss_mb(reset)
            out.growth_mb = out.peak_rss_mb - before if before is not None else 0.0
            sink.seek(0)
            out.stderr = sink.read().decode("utf-8", "replace") + buffer.getvalue()
            out.warnings = [f"{w.category.__name__}: {w.message} "
                            f"({os.path.basename(w.filename)}:{w.lineno})" for w in shown]
