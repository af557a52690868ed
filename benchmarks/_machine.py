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


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """Median of per-round ratios num[i] / den[i]: robust when load changes during the run."""
    return statistics.median(n / d for n, d in zip(num, den, strict=True))


def interleaved(fns: Sequence[Callable[[], object]], repeats: int, warmup: int,
                per_call: float = 1.0) -> list[list[float]]:
    """Time each of ``fns`` ``repeats`` times, interleaved, after ``warmup`` untimed rounds.

    The order alternates every round (A B, B A, ...) so neither side always runs on a cache or
    CPU-frequency state left by the other. Returns milliseconds per call divided by ``per_call``.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append((time.perf_counter() - t0) * 1e3 / per_call)
    return times
