"""Machine facts shared by the benchmark scripts (printed so a ratio can be read in context)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from importlib import metadata


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):
        return "n/a"


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def print_facts(title: str, dists: Sequence[str], extra: Sequence[tuple[str, str]] = ()) -> None:
    print(f"== {title}")
    print(f"cpu: {cpu_count()} usable x {cpu_model()} ({platform.machine()})")
    print(f"python {platform.python_version()} on {platform.system()} {platform.release()}")
    print("versions: " + ", ".join(f"{d} {version(d)}" for d in dists))
    for key, value in extra:
        print(f"{key}: {value}")
    print(f"load average (1/5/15 min) at start: {load_average()}")


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_fraction(seconds: float = 1.0) -> float | None:
    """Share of all CPUs busy over ``seconds`` while this process sleeps (other load)."""
    start = _cpu_times()
    if start is None:
        return None
    time.sleep(seconds)
    end = _cpu_times()
    if end is None or end[1] == start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def report_other_load(when: str, multi_threaded: bool = True) -> None:
    """Print how busy the machine is without us; warn when that makes ratios unreliable."""
    busy = busy_fraction()
    if busy is None:
        print(f"other CPU load {when}: unknown")
        return
    cores = busy * cpu_count()
    print(f"other CPU load {when}: {100 * busy:.0f}% of all CPUs (~{cores:.1f} cores busy)")
    if busy > 0.2 and multi_threaded:
        print("WARNING: other processes are using the CPUs; multi-threaded timings (torch's "
              "OpenMP pool above all) degrade badly under contention, so ratios from this run "
              "are unreliable: rerun on an idle machine, or compare one thread a side "
              "(--threads 1)")
    elif busy > 0.2:
        print("note: other processes are using the CPUs; these single-threaded timings share "
              "caches and memory bandwidth with them, so expect more spread than when idle")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of per-round ratios num[i] / den[i]: robust when load changes during the run."""
    return statistics.median(n / d for n, d in zip(num, den, strict=True))


def interleaved(fns: Sequence[Callable[[], object]], repeats: int, warmup: int,
                per_call: float = 1.0, budget_s: float | None = None,
                min_repeats: int = 3) -> list[list[float]]:
    """Time each of ``fns`` ``repeats`` times, interleaved, after ``warmup`` untimed rounds.

    The order alternates every round (A B, B A, ...) so neither side always runs on a cache or
    CPU-frequency state left by the other. Returns milliseconds per call divided by ``per_call``.
    With ``budget_s``, timed rounds stop once that many seconds have passed since the start
    (after at least ``min_repeats`` rounds), so a loaded machine cannot stretch a run for ever.
    """
    start = time.perf_counter()
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        if budget_s is not None and r >= min_repeats and time.perf_counter() - start > budget_s:
            break
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append((time.perf_counter() - t0) * 1e3 / per_call)
    return times
