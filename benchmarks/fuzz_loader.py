"""Fuzz the per-file path (scan, read_input, the screening decode) with many seeded cases.

    python benchmarks/fuzz_loader.py --cases 5000 [--seed S] [--start I] [--score]
        [--full-size] [--no-sparse] [--keep DIR] [--findings N]

Prints the outcome table (operator x entry point: result / not-analysed / named error / ESCAPE,
and the PHI / STDERR / WARNING / MEM flags), one example per class of finding, and the totals
line; exits 1 on any escape, PHI hit, stderr output, escaped warning or memory blowup.
``--score`` also scores the analysable inputs with the bundled model (Engine.score on CPU);
``--full-size`` adds the original-size radiographs to the seeds; ``--no-sparse`` writes lying
lengths without their sparse extension (files huge on paper cost seconds and gigabytes each
while the loader trusts them). Any case is regenerated from (seed, index): see tests/fuzz.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tqdm import tqdm  # noqa: E402

from tests.fuzz.harness import default_spec, make_context  # noqa: E402
from tests.fuzz.mutations import build_base_files  # noqa: E402
from tests.fuzz.report import run_many  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--score", action="store_true", help="score analysable inputs too")
    parser.add_argument("--full-size", action="store_true", help="add full-size seeds")
    parser.add_argument("--no-sparse", action="store_true",
                        help="do not extend lying-length files sparsely to >= 1 GB")
    parser.add_argument("--keep", type=Path, help="write (and keep) the cases in this folder")
    parser.add_argument("--findings", type=int, default=40, help="finding classes to print")
    args = parser.parse_args(argv)

    engine = None
    if args.score:
        from chexnet.inference.package.lookup import resolve_model
        from chexnet.inference.scoring.engine import Engine

        engine = Engine(resolve_model(None), device="cpu")
    ctx = make_context(default_spec(), engine=engine)
    with tempfile.TemporaryDirectory(prefix="chexnet-fuzz-") as tmp:
        seeds = build_base_files(Path(tmp) / "seeds", full_size=args.full_size)
        out_dir = args.keep or Path(tmp) / "cases"
        print(f"seeds: {', '.join(sorted(seeds))}")
        with tqdm(total=args.cases, unit="case", file=sys.stdout, mininterval=1.0) as bar:
            report = run_many(args.seed, args.cases, seeds, out_dir, ctx, start=args.start,
                              keep_files=args.keep is not None, sparse=not args.no_sparse,
                              progress=bar.update)
    print(report.table())
    if report.findings:
        print(f"\nfindings (one example per class; regenerate with make_case(seed, index)):\n"
              f"{report.findings_text(args.findings)}")
    print(f"\n{report.totals_line()} ({report.cases / max(report.seconds, 1e-9):.1f} cases/s)")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
