"""The one worker abstraction: one-shot jobs and streaming jobs on a pool, results and errors
by signal on the GUI thread, cancellation, and jobs kept alive until they have reported."""

from __future__ import annotations

import gc
import threading
import time

from chexnet.app.workers import JobRunner, Stream, describe_error
from chexnet.inference.errors import ChexnetError

TIMEOUT_MS = 20_000


def double(x: int) -> int:
    return 2 * x


def fail_with(err: BaseException):
    raise err


def test_a_job_returns_its_result_with_its_token(qtbot):
    runner = JobRunner()
    got, errors = [], []
    with qtbot.waitSignal(runner.busy_changed, check_params_cb=lambda busy: not busy,
                          timeout=TIMEOUT_MS):
        runner.start(("study", 3), double, 21, on_result=lambda t, r: got.append((t, r)),
                     on_error=lambda t, m: errors.append(m))
    assert got == [(("study", 3), 42)]
    assert errors == []
    assert runner.running == 0


def test_errors_reach_the_one_handler_as_a_readers_message(qtbot):
    runner = JobRunner()
    messages = []
    runner.start(1, fail_with, ChexnetError("x.dcm: not a chest X-ray"),
                 on_result=lambda t, r: messages.append("returned?"),
                 on_error=lambda t, m: messages.append(m))
    runner.start(2, fail_with, KeyError("Rows"), on_error=lambda t, m: messages.append(m))
    qtbot.waitUntil(lambda: runner.running == 0, timeout=TIMEOUT_MS)
    # an unexpected error is named by its type only: its text could quote file content
    assert sorted(messages) == ["unexpected KeyError (details in the debug log)",
                                "x.dcm: not a chest X-ray"]
    assert describe_error(MemoryError()) == "out of memory while reading or analysing this image"


def test_jobs_nobody_holds_still_report(qtbot):
    """The runner keeps each job until it has reported: a job freed while it runs lost its
    signals, or crashed the process (a worklist reopened on an empty folder said nothing)."""
    runner = JobRunner(max_threads=4)
    got, busy = [], []
    runner.busy_changed.connect(busy.append)

    def start_many() -> None:
        for i in range(200):
            runner.start(i, double, i, on_result=lambda t, r: got.append(r))

    start_many()
    gc.collect()
    qtbot.waitUntil(lambda: runner.running == 0, timeout=TIMEOUT_MS)
    assert sorted(got) == [2 * i for i in range(200)]
    assert busy == [True, False]


def count_up(stream: Stream, n: int) -> str:
    for i in range(n):
        stream.item(i)
        stream.progress((i + 1, n))
    return "done"


def test_a_stream_reports_items_and_progress_then_its_result_then_finished(qtbot):
    runner = JobRunner(max_threads=1)
    events = []
    runner.start_stream("run", count_up, 5,
                        on_item=lambda t, v: events.append(("item", v)),
                        on_progress=lambda t, v: events.append(("progress", v)),
                        on_result=lambda t, r: events.append(("result", r)),
                        on_error=lambda t, m: events.append(("error", m)),
                        on_finished=lambda t: events.append(("finished", t)))
    qtbot.waitUntil(lambda: runner.running == 0, timeout=TIMEOUT_MS)
    assert [v for kind, v in events if kind == "item"] == [0, 1, 2, 3, 4]
    assert [v for kind, v in events if kind == "progress"][-1] == (5, 5)
    assert events[-2:] == [("result", "done"), ("finished", "run")]
    assert not any(kind == "error" for kind, _ in events)


def until_cancelled(stream: Stream) -> int:
    sent = 0
    deadline = time.monotonic() + 20
    while not stream.cancelled.is_set() and time.monotonic() < deadline:
        stream.item(sent)
        sent += 1
        stream.cancelled.wait(0.005)  # a little work per item
    return sent


def test_a_cancelled_stream_stops_and_everything_it_sent_arrives(qtbot):
    runner = JobRunner(max_threads=1)
    items, result = [], []
    stream = runner.start_stream("run", until_cancelled, on_item=lambda t, v: items.append(v),
                                 on_result=lambda t, r: result.append(r))
    qtbot.waitUntil(lambda: len(items) >= 3, timeout=TIMEOUT_MS)
    stream.cancel()
    qtbot.waitUntil(lambda: runner.running == 0, timeout=TIMEOUT_MS)
    assert stream.cancelled.is_set()
    assert len(result) == 1
    assert items == list(range(result[0]))  # in order, none lost
    assert result[0] < 4000  # stopped by the cancel, not by the deadline


def test_handlers_run_on_the_gui_thread_and_the_work_does_not(qtbot):
    runner = JobRunner()
    gui = threading.get_ident()
    seen = {}

    def work(stream: Stream) -> None:
        seen["work"] = threading.get_ident()
        stream.item("x")

    runner.start_stream("t", work, on_item=lambda t, v: seen.setdefault("item",
                                                                       threading.get_ident()),
                        on_result=lambda t, r: seen.setdefault("result",
                                                               threading.get_ident()))
    qtbot.waitUntil(lambda: runner.running == 0, timeout=TIMEOUT_MS)
    assert seen["work"] != gui
    assert seen["item"] == gui
    assert seen["result"] == gui
