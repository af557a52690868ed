"""Fuzz the per-file path: every mutated file ends as a result, a not-analysed result or a named
error; nothing else escapes, no planted PHI is in any message, nothing reaches stderr, no Python
warning escapes, memory stays bounded.

(a) a seeded, time-budgeted run through scan / read_input / decode; (b) every crasher found, as
its own test; (c) the lying-length files that are huge on paper, each in a child process whose
peak memory is measured. The harness itself is checked first (it must see what it looks for).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

import pytest

from tests.fuzz.capture import captured
from tests.fuzz.harness import (
    ESCAPE,
    MEMORY_LIMIT_MB,
    NAMED_ERROR,
    default_spec,
    make_context,
    run_case,
    run_entry,
)
from tests.fuzz.memory_probe import run_in_child
from tests.fuzz.mutations import PHI, Case, build_base_files, make_case, phi_hits
from tests.fuzz.named_cases import MEMORY_CASES, write_named
from tests.fuzz.report import Report, run_many
from tests.fuzz.seeds import NIH_IMAGES

FUZZ_SEED = 20240611
#: Cases of the time-budgeted run: more than fit in FUZZ_BUDGET_S on a 2-core machine.
FUZZ_CASES = 5000
FUZZ_BUDGET_S = 50.0
#: Fewer cases than this in the budget means the harness got slow, not that the loader is fine.
FUZZ_MIN_CASES = 150

#: (seed, index) of every fuzz case that once broke the property (see /work/notes or the
#: finding's description); each runs on its own below.
REGRESSION_CASES: list[tuple[int, int]] = [
    # F1: PatientName made UN / UT / OB with a length >= 1 GB, the file extended sparsely
    (1, 41), (1, 74), (1, 142), (1, 193),
]


@pytest.fixture(scope="module")
def base_files(tmp_path_factory):
    return build_base_files(tmp_path_factory.mktemp("fuzz_seeds"))


@pytest.fixture(scope="module")
def ctx():
    return make_context(default_spec())


# --- the harness sees what it looks for -------------------------------------------------------

def test_capture_sees_fd2_sys_stderr_warnings_and_log_records():
    with captured() as cap:
        os.write(2, b"from C\n")
        sys.stderr.write("from Python\n")
        warnings.warn("escaped", UserWarning, stacklevel=1)
        logging.getLogger("chexnet.fuzz.check").warning("logged")
    assert "from C" in cap.stderr
    assert "from Python" in cap.stderr
    assert any("escaped" in w for w in cap.warnings)
    assert cap.log_records == ["chexnet.fuzz.check: logged"]


def test_phi_needles_find_planted_values_and_pieces():
    assert phi_hits("all fine") == ()
    assert phi_hits(f"name {PHI['PatientName'].upper()}")
    assert phi_hits("id 7731995 leaked")
    assert phi_hits("zyxwv#ts")  # a flipped byte leaves a piece


def test_an_unnamed_exception_is_an_escape(base_files, ctx, tmp_path):
    case = make_case(FUZZ_SEED, 0, base_files, tmp_path)
    out = run_entry("scan", Case(0, 0, "none", "none", [], None), ctx)  # scan([None]) raises
    assert out.kind == ESCAPE
    assert out.exc_type == "TypeError"
    assert run_case(case, ctx=ctx).entries[0].kind != ESCAPE


def test_cases_are_deterministic(base_files, tmp_path):
    a = make_case(7, 123, base_files, tmp_path / "a")
    b = make_case(7, 123, base_files, tmp_path / "b")
    assert (a.operator, a.params) == (b.operator, b.params)
    assert a.path.read_bytes() == b.path.read_bytes()


def test_png_seeds_are_present(base_files):
    if not NIH_IMAGES.is_dir():
        pytest.skip(f"NIH sample not found at {NIH_IMAGES}: the run has no PNG cases")
    assert sum(b.kind == "png" for b in base_files.values()) >= 3


# --- (a) the seeded, time-budgeted run --------------------------------------------------------

def _explain(report: Report) -> str:
    return (f"\n{report.table()}\n{report.totals_line()}\n\nfindings (one example per class; "
            f"regenerate with make_case(seed, index, ...)):\n{report.findings_text()}")


def test_fuzz_the_per_file_path(base_files, ctx, tmp_path):
    """Files huge on paper are written without their sparse extension here (the memory tests
    below run those in a child process); everything else is as the benchmark runs it."""
    report = run_many(FUZZ_SEED, FUZZ_CASES, base_files, tmp_path, ctx,
                      time_budget=FUZZ_BUDGET_S, sparse=False)
    assert report.cases >= FUZZ_MIN_CASES, _explain(report)
    problems = {p: report.total(p) for p in ("ESCAPE", "PHI", "STDERR", "WARNING", "MEM")}
    assert problems == dict.fromkeys(problems, 0), _explain(report)


# --- (b) every crasher found ------------------------------------------------------------------

@pytest.mark.parametrize(("seed", "index"), REGRESSION_CASES,
                         ids=[f"{s}-{i}" for s, i in REGRESSION_CASES])
def test_regression_case(seed, index, base_files, tmp_path):
    """Each in a child process (some are gigabytes on paper): every entry point's outcome is
    named, PHI-free, silent and under the memory limit."""
    case = make_case(seed, index, base_files, tmp_path)
    try:
        outcomes = {e: run_in_child(case.path, e, default_spec())
                    for e in ("scan", "read_input", "decode")}
    finally:
        case.path.unlink(missing_ok=True)
    bad = {e: o for e, o in outcomes.items()
           if o["kind"] in (ESCAPE, "CRASH") or o["phi"] or o["stderr"]
           or not o["peak_rss_mb"] < MEMORY_LIMIT_MB}
    assert bad == {}, case.describe()


# --- (c) lying lengths, huge on paper ---------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MEMORY_CASES))
def test_memory_of_lying_lengths(name, base_files, tmp_path):
    """The file claims (and, extended sparsely, holds) a gigabyte or more; the loader refuses
    it by name before reading it: the child's peak RSS stays under 1.5 GB."""
    case = write_named(name, base_files, tmp_path)
    try:
        scanned = run_in_child(case.path, "scan", default_spec())
        decoded = run_in_child(case.path, "decode", default_spec())
    finally:
        case.path.unlink(missing_ok=True)
    for outcome in (scanned, decoded):
        assert outcome["peak_rss_mb"] < MEMORY_LIMIT_MB, (name, outcome)
    assert decoded["kind"] == NAMED_ERROR, (name, decoded)
    assert scanned["kind"] == NAMED_ERROR, (name, scanned)
