"""chexnet Engine (ONNX Runtime, CPU) vs torch eager fp32 on the same DenseNet-121 weights.

An untrained (seeded) DenseNet-121 with the CAM head is exported with
``chexnet.training.package.export.export_package`` to a temporary folder; then the exported
package is run through ``Engine(path, device="cpu").run(batch)`` and the very same module
through torch eager (``ExportWrapper``: probs and CAMs, ``torch.no_grad()``, ``eval()``), at
batch 1 and 8. Repetitions are interleaved (engine, torch, torch, engine, ...) and the median is
reported, so the ratio is meaningful on a shared, noisy machine even when the absolute times are
not.

    python benchmarks/bench_engine.py [--repeats N] [--warmup N] [--batches 1 8]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _machine
import numpy as np
import onnxruntime as ort
import torch

from chexnet.inference import CHESTXRAY14_LABELS, Engine, ModelCard, PreprocessSpec
from chexnet.training.fit.cam_model import ExportWrapper, build_model
from chexnet.training.package.export import export_package

TARGET = 2.0  # torch/engine ratio the engine aims for


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time chexnet's ONNX Runtime Engine against torch eager fp32 on the same "
                    "DenseNet-121 weights (CPU), interleaved, median ms/image.")
    parser.add_argument("--repeats", type=int, default=9,
                        help="timed repetitions per side and batch size (default: 9)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed repetitions per side and batch size first (default: 2)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8],
                        help="batch sizes to time (default: 1 8)")
    parser.add_argument("--seed", type=int, default=0, help="weights and input seed (default: 0)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BOTH sides (torch.set_num_threads and the engine's "
                             "intra-op threads); default: torch gets the usable CPU count and "
                             "the engine onnxruntime's default. --threads 1 gives a fair "
                             "single-core comparison on a busy machine")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="time budget for all timing rounds; a batch size stops repeating "
                             "once its share is spent, after at least 3 rounds (default: 120)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or min(args.batches) < 1 or args.max_seconds <= 0:
        parser.error("--repeats and batch sizes must be >= 1, --warmup >= 0, --max-seconds > 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    return args


def bench_card() -> ModelCard:
    labels = CHESTXRAY14_LABELS
    return ModelCard(name="bench-densenet121", version="0.0.0", labels=labels,
                     preprocess=PreprocessSpec(), thresholds={lb: 0.5 for lb in labels},
                     threshold_rule="fixed 0.5 (benchmark model)", demo=True,
                     description="untrained seeded DenseNet-121 for benchmarks",
                     arch="densenet121")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads or _machine.cpu_count())
    engine_threads = ("onnxruntime's default" if args.threads is None
                      else f"{args.threads} (--threads)")
    _machine.print_facts(
        "bench_engine: chexnet Engine (onnxruntime CPU) vs torch eager fp32, DenseNet-121",
        ["onnxruntime-gpu", "onnxruntime", "torch", "torchvision", "numpy"],
        [("torch threads", f"{torch.get_num_threads()} "
                           f"({'--threads' if args.threads else 'the usable CPU count'}); "
                           f"mkldnn {torch.backends.mkldnn.is_available()}"),
         ("engine", "device='cpu', providers [CPUExecutionProvider], intra-op threads: "
                    f"{engine_threads}"),
         ("onnxruntime providers built in", ", ".join(ort.get_available_providers()))])
    _machine.report_other_load("at start", multi_threaded=args.threads != 1)

    torch.manual_seed(args.seed)
    model = build_model("densenet121", len(CHESTXRAY14_LABELS)).eval()
    wrapper = ExportWrapper(model).eval()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench-densenet121.onnx"
        t0 = time.perf_counter()
        report = export_package(model, bench_card(), path)
        export_s = time.perf_counter() - t0
        print(f"exported {path.name} ({path.stat().st_size / 2**20:.1f} MiB) in {export_s:.1f} s; "
              f"export self-check max |probs diff| {report.max_abs_diff_probs:.2e}")
        engine = Engine(path, device="cpu", threads=args.threads)
        print(f"engine providers: {', '.join(engine.providers)}")
        print(f"repeats {args.repeats} (fewer if a batch size's share of --max-seconds "
              f"{args.max_seconds:.0f} runs out), warm-up {args.warmup}, interleaved, median\n")
        budget = args.max_seconds / len(args.batches)

        rows = []
        for batch in args.batches:
            x = rng.standard_normal((batch, 3, 224, 224)).astype(np.float32)
            xt = torch.from_numpy(x)
            out: dict[str, object] = {}

            def run_engine(x=x, out=out):
                out["engine"] = engine.run(x)

            def run_torch(xt=xt, out=out):
                with torch.no_grad():
                    out["torch"] = wrapper(xt)

            t_engine, t_torch = _machine.interleaved([run_engine, run_torch], args.repeats,
                                                     args.warmup, per_call=batch,
                                                     budget_s=budget)
            e_ms, t_ms = _machine.median(t_engine), _machine.median(t_torch)
            got = out["engine"]
            probs, cams = out["torch"]
            dp = float(np.max(np.abs(got.probs - probs.numpy())))
            dc = float(np.max(np.abs(got.cams - cams.numpy())))
            rows.append((batch, len(t_engine), e_ms, t_ms, t_ms / e_ms,
                         _machine.paired_ratio(t_torch, t_engine), dp, dc))

    print(f"{'batch':>5} | {'n':>2} | {'engine ms/img':>13} | {'torch ms/img':>12} |"
          f" {'torch/engine':>12} | {'paired':>7} | {'max|dprobs|':>11} | {'max|dcams|':>10}")
    print("-" * 93)
    for batch, n, e_ms, t_ms, ratio, paired, dp, dc in rows:
        print(f"{batch:>5} | {n:>2} | {e_ms:>13.2f} | {t_ms:>12.2f} | {ratio:>11.2f}x |"
              f" {paired:>6.2f}x | {dp:>11.2e} | {dc:>10.2e}")
    print("n = timed rounds; torch/engine = median torch / median engine; paired = median of "
          "per-round ratios")
    worst = min(r[4] for r in rows)
    verdict = "meets" if worst >= TARGET else "MISSES"
    print(f"\nworst torch/engine ratio {worst:.2f}x: {verdict} the >= {TARGET:.0f}x target "
          "(ratios from one interleaved run; absolute ms vary with machine load)")
    _machine.report_other_load("at end", multi_threaded=args.threads != 1)
    print(f"load average (1/5/15 min) at end: {_machine.load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
