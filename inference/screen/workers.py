"""The decode worker pool of the screener: fresh processes (a fork server, never forks of the
main process, which holds ONNX Runtime's threads), their stderr kept off the terminal, a dead
or stuck worker turned into an error outcome for its file, and a clean shutdown."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import threading
from pathlib import Path

import pebble

from chexnet.inference.screen.decode import DecodeOutcome, worker_init
from chexnet.inference.screen.forkserver import ENV as FORKSERVER_ENV


def start_pool(workers: int, log_path: Path) -> pebble.ProcessPool:
    return pebble.ProcessPool(max_workers=workers, context=_mp_context(log_path),
                              initializer=worker_init)


def shut_down(pool: pebble.ProcessPool, *, graceful: bool) -> None:
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


def outcome_of(path: str, future: cf.Future, timeout_s: float) -> DecodeOutcome:
    """A finished decode task -> its outcome; a dead or stuck worker becomes an error."""
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


def _mp_context(log_path: Path):
    """Fresh worker processes, never forks of this one (it holds ONNX Runtime's threads)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["chexnet.inference.screen.forkserver",
                                    "chexnet.inference.screen.decode"])
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
    if threading.current_thread() is threading.main_thread():
        # it dies with this process (see that module). Not from another thread: the kernel
        # signals a child when the *thread* that started it ends, and a viewer's worker thread
        # ends long before the process does.
        os.environ[FORKSERVER_ENV] = "1"
    try:
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 2)
            forkserver.ensure_running()
    finally:
        os.environ.pop(FORKSERVER_ENV, None)
        os.dup2(saved, 2)
        os.close(saved)
