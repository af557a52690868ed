"""Training data path and step speed.

1. One epoch's data loading from the preprocessed cache (memory-mapped uint8 crops -> flip ->
   normalise) vs decoding the PNGs every epoch (load_image -> resize_and_crop -> normalise), on
   the same NIH sample images, interleaved. Target: the cache at least 5x faster.
2. Training throughput at 224 px on this CPU: DenseNet-121 forward + backward + Adam step,
   batch 16, images/s. (AMP + channels_last vs fp32 is measured only where a GPU is lent.)

Run from the repository root: ``python benchmarks/bench_training.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import _machine

from chexnet.inference import PreprocessSpec, load_image
from chexnet.inference.preprocessing import normalise, resize_and_crop

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nih14-sample" / "images"
TARGET = 5.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=64, help="images per epoch (default 64)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4, help="timed training steps (default 4)")
    args = ap.parse_args(argv)
    import torch

    from chexnet.training.data.cache import build_cache
    from chexnet.training.fit.cam_model import build_model

    _machine.print_facts("bench_training: cached vs per-epoch decoding; CPU training speed",
                         ["torch", "numpy", "Pillow"],
                         [("torch threads", str(torch.get_num_threads()))])
    paths = sorted(SAMPLE.glob("*.png"))[: args.images]
    if not paths:
        print(f"no images at {SAMPLE}: the shared NIH sample is needed")
        return 1
    spec = PreprocessSpec()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cache = build_cache(paths, spec, Path(tmp))
        build_s = time.perf_counter() - t0
        rng = np.random.default_rng(0)

        def cached_epoch():
            for i in rng.permutation(len(paths)):
                crop = np.asarray(cache.array[i])
                if rng.random() < 0.5:
                    crop = crop[:, ::-1]
                normalise(np.ascontiguousarray(crop), spec)

        def decoding_epoch():
            for i in rng.permutation(len(paths)):
                crop, _ = resize_and_crop(load_image(paths[i]).display_u8(), spec)
                if rng.random() < 0.5:
                    crop = crop[:, ::-1]
                normalise(np.ascontiguousarray(crop), spec)

        t_cache, t_decode = _machine.interleaved([cached_epoch, decoding_epoch], args.repeats,
                                                 warmup=1, per_call=len(paths))
    ratio = _machine.median(t_decode) / _machine.median(t_cache)
    print(f"\nimages per epoch: {len(paths)} NIH PNGs (1024x1024) at 224 px; cache built once "
          f"in {build_s:.1f} s")
    print(f"{'path':<24} | {'ms/image':>9}")
    print(f"{'cached (memmap)':<24} | {_machine.median(t_cache):>9.3f}")
    print(f"{'decode PNG every epoch':<24} | {_machine.median(t_decode):>9.3f}")
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"cache speed-up {ratio:.1f}x: {verdict} the >= {TARGET:.0f}x target")

    model = build_model("densenet121", 14)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.randn(16, 3, 224, 224)
    y = (torch.rand(16, 14) > 0.8).float()
    model.train()
    times = []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        if step:  # the first step is warm-up
            times.append(time.perf_counter() - t0)
    print(f"\nCPU training, DenseNet-121 at 224 px, batch 16, fp32: "
          f"{16 / _machine.median(times):.1f} images/s (median of {len(times)} steps)")
    print("AMP + channels_last vs fp32: needs a CUDA GPU (not measured on this machine)")
    _machine.report_other_load("at end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
