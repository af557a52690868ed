"""`chexnet listen` (receive -> results) against `chexnet screen` on the same files, and the
C-STORE acknowledgement latency (issue 13).

Files: N NIH PNGs from ``../shared`` as 8-bit CR DICOMs (explicit VR little endian, distinct
UIDs), split into S studies; without the NIH sample, generated 512 px gradients.

SCREEN: ``chexnet screen DIR --out OUT`` as a subprocess, spawn to exit (process start, imports
and engine load included), the same model, workers and batch size.
LISTEN: a running ``chexnet listen --study-timeout T`` (started before the clock: a node is a
long-running service); the clock runs from the first C-STORE to the moment every image has a
row in its study's results.csv: sending, waiting out the study timeout, one ``screen()`` per
study (engine load included) and the combined worklist.
ACK: one association, instances sent one after another; the latency of each C-STORE as the
sender sees it (encode, send, the node's decode + fsync of file and folder, response).

    python benchmarks/bench_listen.py                 # 48 images, 4 studies, bundled model
    python benchmarks/bench_listen.py --images 16 --studies 8
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import print_facts, report_other_load
from PIL import Image as PILImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, StoragePresentationContexts

ROOT = Path(__file__).resolve().parents[1]
NIH = ROOT.parent / "shared" / "data" / "nih14-sample" / "images"
MODEL = ROOT / "resources" / "models" / "default.onnx"
CLI = [sys.executable, "-m", "chexnet.inference.cli"]


def make_corpus(folder: Path, n: int, studies: int) -> list[list[Path]]:
    pngs = sorted(NIH.glob("*.png"))[:n] if NIH.is_dir() else []
    groups: list[list[Path]] = [[] for _ in range(studies)]
    uids = [generate_uid() for _ in range(studies)]
    for i in range(n):
        if pngs:
            pixels = np.asarray(PILImage.open(pngs[i % len(pngs)]).convert("L"))
        else:
            y, x = np.mgrid[0:512, 0:512]
            pixels = ((x * (0.2 + i / n) + y * 0.5) % 256).astype(np.uint8)
        s = i % studies
        path = folder / f"study{s}" / f"im{i:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_cr(path, pixels, uids[s])
        groups[s].append(path)
    return groups


def write_cr(path: Path, pixels: np.ndarray, study_uid: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(path, enforce_file_format=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows_in(out: Path) -> int:
    n = 0
    for path in out.glob("results/*/results.csv"):
        with open(path, newline="") as fh:
            n += sum(1 for _ in csv.DictReader(fh))
    return n


def time_screen(folder: Path, out: Path, args) -> float:
    started = time.perf_counter()
    subprocess.run([*CLI, "screen", str(folder), "--out", str(out), "--model", str(args.model),
                    "--workers", str(args.workers), "--fresh"], check=True,
                   capture_output=True)
    return time.perf_counter() - started


def start_listen(out: Path, args) -> tuple[subprocess.Popen, int]:
    log = out.with_suffix(".log")
    fh = open(log, "wb")  # noqa: SIM115  (the node lives until the end of the run)
    port = free_port()
    proc = subprocess.Popen([*CLI, "listen", "--port", str(port), "--host", "127.0.0.1",
                             "--allow-ae", "BENCH", "--out", str(out), "--model",
                             str(args.model), "--workers", str(args.workers),
                             "--study-timeout", str(args.study_timeout)],
                            stdout=fh, stderr=subprocess.STDOUT)
    while not re.search(r"on port \d+", log.read_text(errors="replace")):
        if proc.poll() is not None:
            raise SystemExit(f"chexnet listen exited:\n{log.read_text()}")
        time.sleep(0.05)
    return proc, port


def send(port: int, files: list[Path]) -> list[float]:
    """C-STORE each file over one association; the latency of each, in seconds."""
    ae = AE(ae_title="BENCH")
    ae.requested_contexts = StoragePresentationContexts[:127]
    assoc = ae.associate("127.0.0.1", port, ae_title="CHEXNET")
    assert assoc.is_established
    latencies = []
    for f in files:
        t = time.perf_counter()
        status = assoc.send_c_store(f)
        latencies.append(time.perf_counter() - t)
        assert status.Status == 0x0000
    assoc.release()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--study-timeout", type=float, default=1.0)
    args = parser.parse_args()
    print_facts("chexnet listen vs chexnet screen", ["chexnet", "pynetdicom", "onnxruntime-gpu"],
                [("images", f"{args.images} in {args.studies} studies"),
                 ("corpus", "NIH PNGs as CR DICOM" if NIH.is_dir() else "generated 512 px"),
                 ("study timeout", f"{args.study_timeout:g} s")])
    report_other_load("before")
    with tempfile.TemporaryDirectory(prefix="chexnet-bench-listen-") as tmp:
        root = Path(tmp)
        groups = make_corpus(root / "in", args.images, args.studies)
        screen_s = time_screen(root / "in", root / "screen", args)
        proc, port = start_listen(root / "node", args)
        try:
            started = time.perf_counter()
            latencies = [lat for g in groups for lat in send(port, g)]
            while rows_in(root / "node") < args.images:
                if proc.poll() is not None:
                    raise SystemExit("chexnet listen died")
                time.sleep(0.05)
            listen_s = time.perf_counter() - started
        finally:
            proc.terminate()
            proc.wait(60)
    n = args.images
    print(f"chexnet screen : {n / screen_s:6.2f} images/s ({screen_s:.1f} s, start-up included)")
    print(f"chexnet listen : {n / listen_s:6.2f} images/s ({listen_s:.1f} s, first C-STORE to "
          f"last row; {args.study_timeout:g} s study timeout included)")
    print(f"ratio listen/screen: {screen_s / listen_s:.2f}  (target >= 0.8)")
    print(f"C-STORE acknowledgement: median {1000 * statistics.median(latencies):.1f} ms, "
          f"max {1000 * max(latencies):.1f} ms over {len(latencies)} instances (target < 50 ms)")
    report_other_load("after")


if __name__ == "__main__":
    main()
