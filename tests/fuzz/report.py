"""Many fuzz cases -> one table: per operator x entry point, how each case ended.

``run_many(seed, n, base_files, out_dir, ctx)`` writes, runs and deletes cases (seed, start) ..
(seed, start + n - 1), optionally within a time budget, and returns a :class:`Report`: counts of
result / not-analysed / named error / ESCAPE and the problem flags (PHI, STDERR, WARNING, MEM),
and one :class:`Finding` per problem with what regenerates the case and a PHI-free description.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.harness import (
    ESCAPE,
    KINDS,
    MEMORY_GROWTH_LIMIT_MB,
    SLOW_S,
    CaseOutcome,
    run_case,
)
from tests.fuzz.mutations import PHI_NEEDLES, BaseFile, make_case

FLAGS = ("PHI", "STDERR", "WARNING", "MEM")
PROBLEMS = ("ESCAPE", *FLAGS)


def redact(text: str, limit: int = 160) -> str:
    for needle in sorted(PHI_NEEDLES, key=len, reverse=True):
        text = re.sub(re.escape(needle), "<PHI>", text, flags=re.IGNORECASE)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class Finding:
    problem: str  # one of PROBLEMS, or SLOW
    case: str  # Case.describe(): (seed, index) base operator params
    entry: str
    exc_type: str | None
    detail: str  # PHI-free


@dataclass
class Report:
    counts: Counter = field(default_factory=Counter)  # (operator, entry, column) -> n
    findings: list[Finding] = field(default_factory=list)
    cases: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    stderr_lines: int = 0

    def add(self, outcome: CaseOutcome) -> None:
        case = outcome.case
        row = case.operator if "+" not in case.operator else "stacked"
        self.cases += 1
        for e in outcome.entries:
            self.counts[row, e.entry, e.kind] += 1
            self.peak_rss_mb = max(self.peak_rss_mb, e.peak_rss_mb)
            flags = {"PHI": bool(e.phi), "STDERR": bool(e.stderr.strip() or e.log_records),
                     "WARNING": bool(e.warnings), "MEM": e.growth_mb > MEMORY_GROWTH_LIMIT_MB}
            for flag, raised in flags.items():
                if raised:
                    self.counts[row, e.entry, flag] += 1
            if e.kind == ESCAPE:
                self._note("ESCAPE", case, e, e.where or e.exc_type or "")
            if flags["PHI"]:
                self._note("PHI", case, e, "needles: " + ", ".join(
                    redact(n) for n in e.phi))
            if flags["STDERR"]:
                lines = e.stderr.splitlines() + list(e.log_records)
                self.stderr_lines += len(lines)
                self._note("STDERR", case, e, redact(" | ".join(lines)))
            if flags["WARNING"]:
                self._note("WARNING", case, e, redact(" | ".join(e.warnings)))
            if flags["MEM"]:
                self._note("MEM", case, e, f"grew RSS by {e.growth_mb:.0f} MB "
                                              f"(to {e.peak_rss_mb:.0f} MB)")
            if e.seconds > SLOW_S:
                self._note("SLOW", case, e, f"{e.seconds:.1f} s")

    def _note(self, problem: str, case, e, detail: str) -> None:
        self.findings.append(Finding(problem, case.describe(), e.entry, e.exc_type, detail))

    def total(self, column: str) -> int:
        return sum(n for (_, _, c), n in self.counts.items() if c == column)

    @property
    def failed(self) -> bool:
        return any(self.total(p) for p in PROBLEMS)

    def table(self) -> str:
        columns = (*KINDS, *FLAGS)
        rows = sorted({(op, entry) for op, entry, _ in self.counts})
        head = f"{'operator':<18} {'entry':<10} " + " ".join(f"{c:>12}" for c in columns)
        lines = [head, "-" * len(head)]
        for op, entry in rows:
            lines.append(f"{op:<18} {entry:<10} " + " ".join(
                f"{self.counts[op, entry, c]:>12}" for c in columns))
        lines.append(f"{'TOTAL':<18} {'':<10} " + " ".join(
            f"{self.total(c):>12}" for c in columns))
        return "\n".join(lines)

    def totals_line(self) -> str:
        return (f"{self.cases} cases, {self.total('ESCAPE')} escapes, {self.total('PHI')} PHI, "
                f"{self.stderr_lines} stderr lines, {self.total('WARNING')} warnings, "
                f"peak RSS {self.peak_rss_mb:.0f} MB, {self.seconds:.1f} s")

    def findings_text(self, limit: int = 60) -> str:
        """Findings grouped by (problem, entry, exception, where): one example each."""
        groups: dict[tuple, list[Finding]] = {}
        for f in self.findings:
            groups.setdefault((f.problem, f.entry, f.exc_type, f.detail[:120]), []).append(f)
        out = []
        for (problem, entry, exc, _), found in list(groups.items())[:limit]:
            first = found[0]
            out.append(f"{problem:<7} {entry:<10} {exc or '-'} x{len(found)}: {first.detail}\n"
                       f"        e.g. {redact(first.case, 300)}")
        return "\n".join(out)


def run_many(seed: int, n: int, base_files: dict[str, BaseFile], out_dir: Path, ctx: dict, *,
             start: int = 0, time_budget: float | None = None, keep_files: bool = False,
             sparse: bool = True, progress: Callable[[int], None] | None = None) -> Report:
    """Cases (seed, start) .. (seed, start + n - 1), fewer when ``time_budget`` (s) runs out.
    ``sparse``: see :func:`~tests.fuzz.mutations.make_case`."""
    report = Report()
    began = time.perf_counter()
    for index in range(start, start + n):
        if time_budget is not None and time.perf_counter() - began > time_budget:
            break
        case = make_case(seed, index, base_files, out_dir, sparse=sparse)
        try:
            report.add(run_case(case, ctx=ctx))
        finally:
            if not keep_files and case.path is not None:
                case.path.unlink(missing_ok=True)
        if progress is not None:
            progress(1)
    report.seconds = time.perf_counter() - began
    return report
