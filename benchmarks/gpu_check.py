"""The GPU path, proven (issue 17): one device check, run by ``benchmarks/gpu_check.sh``.

Prints, in this order: the machine (``nvidia-smi``, ONNX Runtime providers, TensorRT, torch);
the provider ``Engine(device="auto")`` actually uses; CUDA and TensorRT fp32/fp16 parity
against the CPU engine on NIH sample images (max |delta p|; plus the fp16 graph on the CPU
provider, export's estimate); engine images/s at batch 1/32/128 on the CPU, CUDA and TensorRT
fp16; decode images/s per core and the cores needed to feed the engine; ``chexnet screen``
images/s on the NIH PNGs; ``chexnet-train`` images/s for one epoch of phantoms at 224 px, AMP
vs fp32, with torch's peak GPU memory; ``nvidia-smi`` memory after it all.

On a machine without a usable CUDA provider every GPU part prints "skipped (no CUDA
provider)", and the CPU parts still run (that is how tests/benchmarks/test_gpu_check.py keeps
it runnable, with ``--quick``). Budget: under 8 minutes on one H100/H200-class GPU (the shell
wrapper kills it at 470 s); a full CPU-only run takes longer on a small machine, since the CPU
engine at batch 128 and CPU training at 224 px are slow there.

    benchmarks/gpu_check.sh [--install] [--quick] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _gpu_parts as parts
import _machine

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nih14-sample"


def show(section: str, value) -> None:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    print(f"{section}: {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes (tests: seconds on a CPU); the figures mean little")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--sample", type=Path, default=SAMPLE, help="NIH sample folder")
    args = ap.parse_args(argv)
    quick = args.quick
    started = time.perf_counter()
    results: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick,
                     "cpus": _machine.cpu_count(), "cpu_model": _machine.cpu_model()}
    show("date", results["date"])
    show("cpus", f"{results['cpus']} ({results['cpu_model']}), load {_machine.load_average()}")
    results["facts"] = parts.facts()
    for key, value in results["facts"].items():
        show(f"facts.{key}", value)
    from chexnet.inference.package.lookup import resolve_model
    from chexnet.inference.scoring.engine import Engine

    auto = Engine(resolve_model(None), device="auto", batch_size="auto")
    results["provider_used"] = {"providers": list(auto.providers), "precision": auto.precision,
                                "batch_size_auto": auto.batch_size,
                                "tensorrt_cache": str(auto.trt_cache or "none")}
    show("provider actually used (device auto)", results["provider_used"])
    del auto
    batches = (1, 2) if quick else (1, 32, 128)
    if not (args.sample / "images").is_dir():
        show("nih sample", f"skipped (no {args.sample}/images)")
        paths, x = [], None
    else:
        paths, x = parts.nih_inputs(args.sample, 4 if quick else 64)
    with parts.temp_folder() as tmp:
        folder = Path(tmp)
        engines = parts.Engines(folder, max(batches))
        if x is not None:
            results["parity"] = parts.parity(x, engines)
            show("parity vs CPU engine (max |dp|)", results["parity"])
        results["engine_img_s"] = parts.engine_rates(batches, 0.5 if quick else 8.0, engines)
        engines.made.clear()  # free the GPU for screening and training
        show("engine images/s by batch", results["engine_img_s"])
        if paths:
            all_paths = sorted((args.sample / "images").glob("*.png"))
            dec = parts.decode_rate(all_paths[:4 if quick else 64], folder)
            results["decode"] = dec
            show("decode (screen worker, 1 process)", dec)
            best = _best_engine_rate(results["engine_img_s"])
            results["feeding"] = parts.feeding(best, dec["img_s_per_core"], results["cpus"])
            show("cores to feed the fastest engine", results["feeding"])
            results["screen"] = parts.screen_rate(all_paths[:6 if quick else 420], folder,
                                                  8 if quick else "auto")
            show("chexnet screen (NIH PNGs)", results["screen"])
        results["training"] = _training(folder, quick)
        for key, value in results["training"].items():
            show(f"training {key}", value)
    results["nvidia_smi_after"] = parts.smi("memory.used,memory.total,utilization.gpu") or \
        parts.SKIP_CUDA
    show("nvidia-smi after", results["nvidia_smi_after"])
    results["seconds"] = round(time.perf_counter() - started, 1)
    show("total seconds", results["seconds"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


def _best_engine_rate(rates: dict) -> float:
    numbers = [v for per in rates.values() if isinstance(per, dict) for v in per.values()]
    return max(numbers) if numbers else 1.0


def _training(folder: Path, quick: bool) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    if quick:  # a runnability check, not a measurement
        n, size, batch, steps = 16, 32, 4, 1
    else:
        n, size, batch, steps = (2048, 224, 128, None) if cuda else (48, 224, 16, None)
    out = {"setup": {"phantoms": n, "size": size, "batch": batch,
                     "device": "cuda" if cuda else "cpu"}}
    out["fp32"] = parts.training_rate(n, size, batch, "fp32", folder, steps)
    if cuda:
        out["amp"] = parts.training_rate(n, size, batch, "auto", folder, steps)
    elif quick:
        out["amp"] = "skipped (no CUDA device for torch)"
    else:  # the CPU's bf16 autocast, for the record (not the CPU default)
        out["amp"] = "skipped (no CUDA device for torch); CPU bf16 autocast: " + json.dumps(
            parts.training_rate(n, size, batch, "bf16", folder, steps))
    return out


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
