"""Imported only by the screening fork server (a forkserver "preload" module): makes the fork
server die with the process that started it.

Why: decode workers are forked from the fork server, and each asks the kernel for SIGKILL when
*its* parent, the fork server, dies (``screen.decode.worker_init``). If the fork server outlived
a run killed with kill -9 (it does: every worker keeps its liveness pipe open), a decoder stuck
in native code would live on too, and keep the fork server alive in turn. With this, killing the
run kills the fork server, which kills every worker, however stuck.

It acts only when :data:`ENV` is set, which ``screen.workers`` does just while it starts the fork
server, so importing this module anywhere else does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

ENV = "CHEXNET_SCREEN_FORKSERVER"
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


if os.environ.pop(ENV, None) == "1":
    die_with_parent()
