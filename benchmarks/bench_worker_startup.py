"""Start-up of a screening decode worker: what it imports now vs what it used to import.

A decode worker (the fork server's preload, then each worker process) imports
``chexnet.inference.screen.forkserver`` and ``chexnet.inference.screen.decode``. Before the
redesign (issue 11) every ``chexnet.inference.*`` import went through a package ``__init__`` that
imported the engine, so each worker also loaded ONNX Runtime (and onnx), which it never uses.
This script times both in fresh interpreters, interleaved, and prints the medians and the ratio:

- ``worker``: the worker's imports as they are now;
- ``worker + engine``: the same plus ``chexnet.inference.scoring.engine`` (ONNX Runtime), i.e.
  what a worker loaded before.

    python benchmarks/bench_worker_startup.py [--repeats N] [--before DIR]

``--before DIR`` adds a third side: the worker's imports of the layout before the redesign,
from a folder holding ``chexnet/{inference,training,app,resources}`` of that commit, e.g.::

    git worktree add /tmp/before ff4735a && mkdir -p /tmp/before-pkg/chexnet
    for d in inference training app resources; do\
        ln -s /tmp/before/$d /tmp/before-pkg/chexnet/; done
    python benchmarks/bench_worker_startup.py --before /tmp/before-pkg
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import _machine

WORKER = "import chexnet.inference.screen.forkserver, chexnet.inference.screen.decode"
SIDES = {
    "worker": WORKER,
    "worker + engine": WORKER + "; import chexnet.inference.scoring.engine",
}
BEFORE = "import chexnet.inference.screen_forkserver, chexnet.inference.screen_decode"
PROBE = ("; import resource, sys; print(int('onnxruntime' in sys.modules), len(sys.modules), "
         "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def start(code: str, pythonpath: str | None = None) -> tuple[float, bool, int, float]:
    """Seconds for a fresh interpreter to run ``code`` and exit, whether it loaded ONNX
    Runtime, how many modules it loaded and its peak resident memory (MB)."""
    env = {**os.environ, "PYTHONPATH": pythonpath} if pythonpath else None
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code + PROBE], capture_output=True, text=True,
                         check=True, env=env, cwd="/" if pythonpath else None)
    elapsed = time.perf_counter() - t0
    ort, n, rss_kb = out.stdout.split()
    return elapsed, ort == "1", int(n), int(rss_kb) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15,
                        help="fresh interpreters per side (default: 15)")
    parser.add_argument("--before", metavar="DIR",
                        help="also time the pre-redesign layout found in DIR (see above)")
    args = parser.parse_args(argv)
    sides = {name: (code, None) for name, code in SIDES.items()}
    if args.before:
        sides["before redesign"] = (BEFORE, args.before)
    _machine.print_facts("decode worker start-up", ["onnxruntime-gpu", "onnxruntime", "onnx",
                                                    "pydicom", "numpy"])
    for code, path in sides.values():  # warm the file system cache once per side
        start(code, path)
    times: dict[str, list[float]] = {name: [] for name in sides}
    facts: dict[str, tuple[bool, int, float]] = {}
    for i in range(args.repeats):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))  # interleaved
        for name in order:
            elapsed, ort, n, rss = start(*sides[name])
            times[name].append(elapsed)
            facts[name] = (ort, n, rss)
    print(f"{'side':<18}{'median s':>10}{'min s':>8}{'modules':>9}{'peak MB':>9}  onnxruntime")
    for name, values in times.items():
        ort, n, rss = facts[name]
        print(f"{name:<18}{statistics.median(values):>10.3f}{min(values):>8.3f}{n:>9}"
              f"{rss:>9.0f}  {'loaded' if ort else 'not loaded'}")
    now = statistics.median(times["worker"])
    for name in sides:
        if name != "worker":
            print(f"{name}: {statistics.median(times[name]) / now:.2f}x the worker's start-up "
                  f"now ({args.repeats} interleaved starts per side)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
