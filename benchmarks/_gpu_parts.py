"""The measurements of ``gpu_check.py`` (issue 17), one function each; every one returns a
dict (JSON-ready) and skips what this machine cannot run, saying why."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.preprocessing import normalise
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.feeding import cores_to_feed, decode_workers, screening_rate
from chexnet.inference.scoring.providers import CUDA, TENSORRT, nvidia_smi, select_providers

SKIP_CUDA = "skipped (no CUDA provider)"
SKIP_TRT = "skipped (no TensorRT provider)"
SMI_FIELDS = "name,driver_version,memory.total,memory.used,compute_cap,power.limit,clocks.max.sm"


def gpu_providers() -> set[str]:
    """The GPU providers ONNX Runtime can actually run here (driver and runtime probed)."""
    return set(select_providers("auto")) & {CUDA, TENSORRT}


def smi(query: str = SMI_FIELDS) -> list[str] | None:
    text = nvidia_smi(query, device_id=None)
    return None if text is None else text.strip().splitlines()


def facts() -> dict:
    import onnxruntime as ort
    import torch

    from chexnet.inference.scoring.trt_cache import tensorrt_version

    return {"nvidia_smi": smi() or "skipped (no nvidia-smi)",
            "onnxruntime": ort.__version__, "ort_providers_listed": ort.get_available_providers(),
            "gpu_providers_usable": sorted(gpu_providers()) or SKIP_CUDA,
            "tensorrt": tensorrt_version() or "none", "torch": torch.__version__,
            "torch_cuda": torch.cuda.is_available()}


def nih_inputs(sample: Path, n: int) -> tuple[list[Path], np.ndarray]:
    """``n`` NIH PNGs and their model inputs (the engine's own preprocessing)."""
    from chexnet.inference.io.image_file import open_image_file

    paths = sorted((sample / "images").glob("*.png"))[:n]
    spec = resolve_model(None).card.preprocess
    engine = Engine(resolve_model(None), device="cpu")
    inputs = []
    for p in paths:
        prepared = engine.prepare(open_image_file(p, with_pixels=True).load())
        inputs.append(prepared.model_input() if prepared.analyse else
                      normalise(np.zeros((spec.size, spec.size), np.uint8), spec)[None])
    return paths, np.concatenate(inputs)


def fp16_package(folder: Path) -> Path:
    """The bundled package with its card saying ``precision: fp16`` (the check only)."""
    import onnx

    from chexnet.inference.package.card import attach_card

    package = resolve_model(None)
    proto = onnx.load(str(package.path))
    attach_card(proto, replace(package.card, precision="fp16"))
    out = folder / "bundled-fp16.onnx"
    onnx.save(proto, str(out))
    return out


class Engines:
    """One engine per (device, fp16) for the whole check, each built at the largest batch:
    TensorRT then builds one engine whose profile (1..max batch) serves every batch size, and
    ``chexnet screen``'s engine (``auto``: TensorRT fp32 at the same batch) finds it cached."""

    def __init__(self, folder: Path, max_batch: int) -> None:
        self.folder, self.max_batch, self.made = folder, max_batch, {}

    def get(self, device: str, fp16: bool = False) -> Engine:
        if (device, fp16) not in self.made:
            pkg = fp16_package(self.folder) if fp16 else resolve_model(None)
            self.made[device, fp16] = Engine(pkg, device=device, batch_size=self.max_batch,
                                             check_registry=False)
        return self.made[device, fp16]


GPU_ENGINES = (("cuda", False, CUDA), ("tensorrt", False, TENSORRT), ("tensorrt", True, TENSORRT))


def skip_reason(need: str) -> str:
    return SKIP_CUDA if need == CUDA else SKIP_TRT


def run_batched(engine: Engine, x: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([engine.run(x[i:i + batch]).probs for i in range(0, len(x), batch)])


def parity(x: np.ndarray, engines: Engines) -> dict:
    """max |delta p| against the CPU engine: CUDA fp32, TensorRT fp32 and fp16, and the fp16
    graph on the CPU provider (export's estimate)."""
    import onnx

    from chexnet.training.package.fp16_parity import measure_fp16_parity

    package = resolve_model(None)
    ref = run_batched(engines.get("cpu"), x, 16)
    gpu = gpu_providers()
    out: dict = {"images": len(x)}
    out["fp16_graph_on_cpu"] = measure_fp16_parity(onnx.load(str(package.path)), x).get(
        "max_abs_diff", "unmeasured")
    for device, fp16, need in GPU_ENGINES:
        name = f"{device}_{'fp16' if fp16 else 'fp32'}"
        if need not in gpu:
            out[name] = skip_reason(need)
            continue
        engine = engines.get(device, fp16)
        out[name] = {"max_abs_dp": float(np.abs(run_batched(engine, x, 16) - ref).max()),
                     "provider": engine.providers[0], "precision": engine.precision}
    return out


def engine_rates(batches: tuple[int, ...], seconds: float, engines: Engines) -> dict:
    """Engine images/s per batch size for the CPU, CUDA and TensorRT fp16."""
    gpu = gpu_providers()
    out: dict = {}
    for label, device, fp16, need in (("cpu", "cpu", False, None), ("cuda", "cuda", False, CUDA),
                                      ("tensorrt_fp16", "tensorrt", True, TENSORRT)):
        if need is not None and need not in gpu:
            out[label] = skip_reason(need)
            continue
        engine, out[label] = engines.get(device, fp16), {}
        for b in batches:
            x = np.random.default_rng(0).standard_normal((b, 3, 224, 224)).astype(np.float32)
            engine.run(x)  # warm-up: cuDNN search for this shape, arena growth
            done, t0 = 0, time.perf_counter()
            while True:
                engine.run(x)
                done += b
                if time.perf_counter() - t0 >= seconds or done >= 64 * b:
                    break
            out[label][str(b)] = round(done / (time.perf_counter() - t0), 1)
    return out


def decode_rate(paths: list[Path], folder: Path) -> dict:
    """The screening worker's per-file work (read, hash, decode, gate, crop, thumbnail) in
    this one process: images per CPU-second of this process (= per core, whatever else the
    machine runs), and per wall-clock second."""
    from chexnet.inference.screen.decode import DecodeRequest, decode

    spec = resolve_model(None).card.preprocess
    thumbs = folder / "thumbs"
    thumbs.mkdir(exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    for i, p in enumerate(paths):
        decode(DecodeRequest(str(p), spec, 10**9, str(thumbs / f"{i}.jpg")))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    return {"images": len(paths), "img_s_per_core": round(len(paths) / max(cpu, 1e-9), 1),
            "img_s_wall": round(len(paths) / max(wall, 1e-9), 1)}


def feeding(engine_img_s: float, decode_per_core: float, cores: int) -> dict:
    workers = decode_workers(engine_img_s, decode_per_core, cores)
    return {"engine_img_s": engine_img_s, "cores_to_feed_engine": cores_to_feed(
        engine_img_s, decode_per_core), "decode_workers_here": workers,
        "expected_screen_img_s_here": round(screening_rate(engine_img_s, decode_per_core,
                                                           workers), 1),
        "with_16_decode_cores": round(screening_rate(engine_img_s, decode_per_core, 16), 1)}


def screen_rate(paths: list[Path], folder: Path, batch_size: int | str) -> dict:
    """``chexnet screen``'s Python API on the PNGs (a folder of links to them)."""
    from chexnet.inference.scoring.batch_size import resolve_for_command
    from chexnet.inference.screen.pipeline import screen

    src = folder / "screen-in"
    src.mkdir()
    for p in paths:
        (src / p.name).symlink_to(p)
    batch = resolve_for_command(batch_size, None, "auto")
    summary = screen([src], folder / "screen-out", batch_size=batch)
    opts = json.loads((folder / "screen-out" / "results.jsonl").read_text().splitlines()[0])
    return {"images": summary.processed, "img_s": round(summary.images_per_s, 2),
            "batch_size": batch, "counts": summary.counts,
            "providers": opts.get("options", {}).get("providers")}


def training_rate(n: int, size: int, batch: int, precision: str, folder: Path,
                  steps: int | None) -> dict:
    """``chexnet-train`` on phantoms: training images/s of each epoch from metrics.jsonl (two
    epochs unless ``steps``: the first carries cuDNN's algorithm search, so the second is the
    figure), and the peak GPU memory torch allocated."""
    import torch

    from chexnet.training.cli import train as cli
    from chexnet.training.data.phantom import write_phantom_dataset

    data = folder / f"phantoms-{n}-{size}"
    labels = data / "labels.csv"
    if not labels.exists():
        write_phantom_dataset(data, n, size=size, seed=0)
    run = folder / f"run-{precision}"
    argv = [str(labels), "--out", str(run), "--size", str(size), "--epochs", "1" if steps else "2",
            "--batch-size", str(batch), "--cache-dir", str(folder / "cache"),
            "--workers", "0" if steps else str(max(0, min(8, (os.cpu_count() or 1) - 1)))]
    argv += ["--no-amp"] if precision == "fp32" else ["--precision", precision]
    if steps:
        argv += ["--max-steps-per-epoch", str(steps)]
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    code = cli.main(argv)
    if code != 0:
        return {"error": f"chexnet-train exited {code}"}
    rates = [round(json.loads(line)["train_images_per_s"], 1)
             for line in (run / "metrics.jsonl").read_text().splitlines()]
    info = json.loads((run / "run.json").read_text())
    out = {"img_s": rates[-1], "img_s_by_epoch": rates, "precision": info.get("precision"),
           "device": info["distributed"]["devices"][0]}
    if torch.cuda.is_available():
        out["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
    return out


def temp_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="chexnet-gpu-check-")
