"""`chexnet screen` vs a naive one-file-at-a-time screener, and its peak memory (issue 5).

Corpora are built once in a cache folder outside the repository (default
``/tmp/chexnet-bench``), from pydicom-data's RG1 and the NIH sample in ``../shared``:

* ``j2k-cr``: RG1_J2KR (a real 1955 x 1841 15-bit CR chest PA, JPEG 2000 lossless), N copies
  with distinct UIDs (distinct files: the screener skips duplicates by UID and content hash);
* ``j2k-nih``: N NIH PNGs (1024 x 1024) as 12-bit JPEG 2000 lossless CR DICOMs with a window
  (the 0.5-99.5 percentiles, as a modality would write one);
* ``png``: N NIH PNGs as they are (symbolic links);
* ``memory``: ``--memory`` distinct PNGs (the 420 NIH images, each copy given its own PNG
  text chunk, so no two files share a content hash) for the peak-RSS run.

NAIVE (written here, per the issue): one file at a time, ``pydicom`` ``pixel_array``, pydicom's
``apply_modality_lut`` / ``apply_voi_lut`` in float64, Pillow float resize + centre crop,
torchvision DenseNet-121 (random weights, 14-way head) eager fp32 at batch 1, probabilities
written to a CSV. Its model is built before the clock starts.

OURS: ``chexnet screen DIR --out OUT --model resources/models/default.onnx --fresh`` as a
subprocess, timed from spawn to exit: process start, imports and engine load included.

    python benchmarks/bench_screen.py --quick           # 8 images a corpus, 200 for memory
    python benchmarks/bench_screen.py                   # 100 a corpus x 3 rounds, 5,000
    python benchmarks/bench_screen.py --memory 0        # speed only
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import _machine
import numpy as np
import psutil
import pydicom
from PIL import Image as PILImage
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

ROOT = Path(__file__).resolve().parents[1]
NIH = ROOT.parent / "shared" / "data" / "nih14-sample" / "images"
MODEL = ROOT / "resources" / "models" / "default.onnx"
CHEXNET = Path(sys.executable).with_name("chexnet")
TARGETS = {"j2k-cr": 8.0, "j2k-nih": 8.0, "png": 2.5}  # ours / naive, images per second
RSS_TARGET_GB = 1.5
CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100,
                   help="images per speed corpus (default: 100)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed rounds per corpus, naive and ours alternating (default: 3)")
    p.add_argument("--memory", type=int, default=5000,
                   help="images in the peak-RSS run; 0 skips it (default: 5000)")
    p.add_argument("--quick", action="store_true", help="--n 8 --memory 200")
    p.add_argument("--corpora", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "chexnet-bench",
                   help="where corpora are built and kept (default: %(default)s)")
    p.add_argument("--workers", type=int, default=None,
                   help="chexnet screen --workers (default: its own default)")
    p.add_argument("--chexnet", type=Path, default=CHEXNET,
                   help="the chexnet command to time, e.g. another version's, to compare two "
                        "versions against the same naive screener (default: %(default)s)")
    args = p.parse_args(argv)
    if args.quick:
        args.n, args.memory, args.repeats = 8, min(args.memory, 200), 1
    if args.n < 1 or args.memory < 0 or args.repeats < 1:
        p.error("--n and --repeats must be >= 1, --memory >= 0")
    return args


# ---------------------------------------------------------------- corpora (built once, cached)

def nih_pngs() -> list[Path]:
    if not NIH.is_dir():
        sys.exit(f"the NIH sample is missing at {NIH}: the PNG corpora are made from it")
    return sorted(NIH.glob("*.png"))


def build(folder: Path, n: int, make_one) -> Path:
    """``folder`` holding ``n`` files made by ``make_one(i, folder)``; reused when complete."""
    done = folder / ".complete"
    if done.exists() and done.read_text() == str(n):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(n):
        make_one(i, folder)
    done.write_text(str(n))  # hidden: the screener skips dot files
    return folder


def make_cr_copy(i: int, folder: Path) -> None:
    ds = pydicom.dcmread(get_testdata_file("RG1_J2KR.dcm"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.save_as(folder / f"cr{i:05d}.dcm")


def make_nih_j2k(i: int, folder: Path) -> None:
    png = nih_pngs()[i % 420]
    grey = np.asarray(PILImage.open(png).convert("L")).astype(np.uint16) * 16  # 12-bit
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CR_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CR_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    lo, hi = np.percentile(grey, [0.5, 99.5])
    ds.WindowCenter, ds.WindowWidth = f"{(lo + hi) / 2:.1f}", f"{hi - lo:.1f}"
    ds.compress(JPEG2000Lossless, grey, encoding_plugin="pylibjpeg")
    ds.save_as(folder / f"nih{i:05d}.dcm", enforce_file_format=True)


def link_png(i: int, folder: Path) -> None:
    png = nih_pngs()[i % 420]
    (folder / f"{i:05d}_{png.name}").symlink_to(png)


def make_distinct_png(i: int, folder: Path) -> None:
    """Copy ``i`` of an NIH PNG with a tEXt chunk naming it: same pixels, distinct bytes.
    (Cheaper than re-encoding 5,000 PNGs; the chunk is standard, readers ignore it.)"""
    data = nih_pngs()[i % 420].read_bytes()
    end = data.rindex(b"IEND") - 4  # the IEND chunk's length field
    body = b"tEXt" + b"Comment\x00" + f"chexnet benchmark copy {i}".encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    (folder / f"m{i:05d}.png").write_bytes(data[:end] + chunk + data[end:])


CORPORA = {"j2k-cr": make_cr_copy, "j2k-nih": make_nih_j2k, "png": link_png}
CORPUS_VERSION = 2  # part of the cache folder names: bump when a builder changes


# ---------------------------------------------------------------- the naive screener

class NaiveScreener:
    """One file at a time, the obvious libraries, float64 LUTs, torch eager fp32 batch 1."""

    def __init__(self) -> None:
        import torch
        import torchvision

        torch.manual_seed(0)
        torch.set_num_threads(_machine.cpu_count())
        self.torch = torch
        self.model = torchvision.models.densenet121(weights=None)
        self.model.classifier = torch.nn.Linear(self.model.classifier.in_features, 14)
        self.model.eval()

    def unit_image(self, path: Path) -> np.ndarray:
        """The image scaled to [0, 1], bright = dense."""
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            grey = np.asarray(PILImage.open(path).convert("L"), dtype=np.float64)
            return grey / 255.0
        arr = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
        if "WindowCenter" in ds:
            arr = apply_voi_lut(arr, ds)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / max(hi - lo, 1e-6)
        return 1.0 - arr if ds.PhotometricInterpretation == "MONOCHROME1" else arr

    def model_input(self, unit: np.ndarray) -> np.ndarray:
        h, w = unit.shape
        new_h, new_w = (224, int(224 * w / h)) if h <= w else (int(224 * h / w), 224)
        pil = PILImage.fromarray(unit.astype(np.float32), mode="F")
        small = np.asarray(pil.resize((new_w, new_h), PILImage.Resampling.BILINEAR))
        top, left = round((new_h - 224) / 2), round((new_w - 224) / 2)
        crop = small[top:top + 224, left:left + 224].astype(np.float64)
        return ((crop[None] - MEAN[:, None, None]) / STD[:, None, None]).astype(np.float32)

    def screen(self, files: list[Path], out_csv: Path) -> None:
        with open(out_csv, "w", newline="") as fh, self.torch.no_grad():
            writer = csv.writer(fh)
            for path in files:
                x = self.torch.from_numpy(self.model_input(self.unit_image(path)))[None]
                probs = self.torch.sigmoid(self.model(x))[0].numpy()
                writer.writerow([path.name, *(f"{p:.4f}" for p in probs)])


# ---------------------------------------------------------------- ours, and its memory

class TreeRssSampler(threading.Thread):
    """Peak of the summed RSS of a process and all its descendants, sampled every 0.2 s.
    Summing RSS counts shared library pages once per process: an upper bound."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.peak_processes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += proc.memory_info().rss
            if total > self.peak:
                self.peak, self.peak_processes = total, len(procs)
            self.stop.wait(0.2)


def run_ours(folder: Path, out: Path, workers: int | None, log: Path,
             chexnet: Path = CHEXNET) -> tuple[float, int, int]:
    """(seconds from spawn to exit, peak tree RSS bytes, rows in results.csv)."""
    cmd = [str(chexnet), "screen", str(folder), "--out", str(out), "--model", str(MODEL),
           "--fresh"]
    if workers:
        cmd += ["--workers", str(workers)]
    with open(log, "w") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        sampler = TreeRssSampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        seconds = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
    if rc not in (0, 1):
        sys.exit(f"chexnet screen exited {rc}; see {log}")
    with open(out / "results.csv", newline="") as fh:
        rows = sum(1 for _ in csv.DictReader(fh))
    return seconds, sampler.peak, rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.chexnet.exists():
        sys.exit(f"{args.chexnet} not found: install the package (pip install -e .)")
    _machine.print_facts("chexnet screen vs a naive screener",
                         ["chexnet", "onnxruntime", "onnxruntime-gpu", "pydicom",
                          "pylibjpeg-openjpeg", "pillow", "torch", "torchvision"],
                         [("corpora", str(args.cache)), ("model", str(MODEL.relative_to(ROOT)))])
    report_load("at start")
    args.cache.mkdir(parents=True, exist_ok=True)
    naive = NaiveScreener()
    results = []
    with tempfile.TemporaryDirectory(prefix="chexnet-bench-") as tmp:
        one = build(args.cache / "png-1", 1, link_png)
        fixed, _, _ = run_ours(one, Path(tmp) / "out-one", args.workers, Path(tmp) / "one.log",
                               args.chexnet)
        print(f"chexnet screen on 1 image: {fixed:.1f} s (its fixed cost: process start, imports, "
              "engine load, worker start, report)", flush=True)
        for name in args.corpora:
            t0 = time.perf_counter()
            folder = build(args.cache / f"{name}-v{CORPUS_VERSION}-{args.n}", args.n,
                           CORPORA[name])
            files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
            print(f"corpus {name}: {len(files)} files in {folder} "
                  f"(ready in {time.perf_counter() - t0:.1f} s)", flush=True)
            naive_s, ours_s = time_corpus(name, folder, files, naive, Path(tmp), args)
            results.append((name, len(files), naive_s, ours_s))
        memory = None
        if args.memory:
            folder = build(args.cache / f"memory-{args.memory}", args.memory, make_distinct_png)
            print(f"memory run: chexnet screen on {args.memory} distinct PNGs ...", flush=True)
            seconds, peak, rows = run_ours(folder, Path(tmp) / "out-memory", args.workers,
                                           Path(tmp) / "memory.log", args.chexnet)
            memory = (args.memory, seconds, peak, rows)
    report_load("at end")
    print_table(results, memory)
    return 0


def time_corpus(name: str, folder: Path, files: list[Path], naive: NaiveScreener, tmp: Path,
                args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Seconds per round of each side; who goes first alternates every round."""
    naive_s: list[float] = []
    ours_s: list[float] = []
    naive.screen(files[:1], tmp / "warm-up.csv")  # torch's first call allocates: not timed
    for r in range(args.repeats):
        for side in ("naive", "ours") if r % 2 == 0 else ("ours", "naive"):
            if side == "naive":
                naive_s.append(timed(naive.screen, files, tmp / f"naive-{name}.csv"))
                continue
            seconds, _, rows = run_ours(folder, tmp / f"out-{name}", args.workers,
                                        tmp / f"{name}.log", args.chexnet)
            ours_s.append(seconds)
            if rows != len(files):
                print(f"WARNING: chexnet screen wrote {rows} rows for {len(files)} files")
        print(f"  round {r + 1}: naive {len(files) / naive_s[-1]:6.2f} img/s   ours "
              f"{len(files) / ours_s[-1]:6.2f} img/s   ratio {naive_s[-1] / ours_s[-1]:5.2f}x",
              flush=True)
    return naive_s, ours_s


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def report_load(when: str) -> None:
    busy = _machine.busy_fraction()
    if busy is None:
        return
    print(f"other CPU load {when}: {100 * busy:.0f}% of all CPUs "
          f"(~{busy * _machine.cpu_count():.1f} cores busy)")
    if busy > 0.2:
        print("WARNING: other processes are using the CPUs; both sides run multi-threaded "
              "(torch's OpenMP pool, ONNX Runtime's and the decode workers), so absolute rates "
              "and the ratios move with that load: rerun on an idle machine to confirm")


def print_table(results, memory) -> None:
    print("\n| corpus | images | rounds | naive img/s | ours img/s | ours / naive | paired "
          "| target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, n, naive_s, ours_s in results:
        naive, ours = _machine.median(naive_s), _machine.median(ours_s)
        print(f"| {name} | {n} | {len(naive_s)} | {n / naive:.2f} | {n / ours:.2f} | "
              f"{naive / ours:.2f}x | {_machine.paired_ratio(naive_s, ours_s):.2f}x | "
              f">= {TARGETS[name]:g}x |")
    if memory:
        n, seconds, peak, rows = memory
        print(f"\npeak RSS of chexnet screen (process tree, summed) on {n} images: "
              f"{peak / 1e9:.2f} GB (target < {RSS_TARGET_GB} GB); {rows} rows, "
              f"{seconds:.0f} s, {n / seconds:.1f} img/s")
    print("img/s: images / median seconds of the rounds; paired: median of per-round ratios. "
          "ours = the whole `chexnet screen` command: process start, engine load, decode "
          "workers, journal, CSV and HTML report included; naive = the screening loop only")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
