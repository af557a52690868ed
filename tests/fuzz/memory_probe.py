"""Run one entry point on one file in a child process and measure the child's peak memory.

Used for the lying-length files that are huge on paper (extended sparsely): a loader that trusts
the length reads gigabytes, which would distort the memory of the process that runs the other
cases. The child is capped (``RLIMIT_AS``) so that a blowup cannot take the machine with it; the
cap is far above the limit tested, so a blowup is measured, not hidden.
"""

from __future__ import annotations

import json
import pickle
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Address-space cap of the child (a safety net, well above the 1.5 GB the tests assert).
CHILD_ADDRESS_SPACE = 6 << 30

CHILD = """
import json, pickle, resource, sys
from pathlib import Path
from tests.fuzz.harness import make_context, run_entry
from tests.fuzz.mutations import Case
spec = pickle.loads(bytes.fromhex(sys.argv[1]))
path, entry = Path(sys.argv[2]), sys.argv[3]
ctx = make_context(spec)
ctx["file_input"] = None
out = run_entry(entry, Case(0, 0, "child", entry, [], path), ctx)
peak = max(out.peak_rss_mb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"kind": out.kind, "exc_type": out.exc_type, "where": out.where,
                  "phi": list(out.phi), "stderr": bool(out.stderr.strip()),
                  "peak_rss_mb": peak, "seconds": out.seconds}))
"""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))


def run_in_child(path: Path, entry: str, spec, timeout: float = 300) -> dict:
    """The child's outcome for ``entry`` on ``path``: kind, exc_type, where, phi, stderr (bool),
    peak_rss_mb (the child's own peak), seconds; ``kind`` is ``CRASH`` when the child died."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, pickle.dumps(spec).hex(), str(path), entry],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, preexec_fn=_limit,
        check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"kind": "CRASH", "exc_type": f"exit {proc.returncode}", "where": "",
                "phi": [], "stderr": bool(proc.stderr.strip()), "peak_rss_mb": float("nan"),
                "seconds": float("nan")}
    return json.loads(lines[-1])
