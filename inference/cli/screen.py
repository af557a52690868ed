"""``chexnet screen``: a folder (or a PACS export) -> a prioritised worklist. See
:mod:`chexnet.inference.screen.pipeline` for the pipeline and its Python API."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from chexnet.inference.cli.common import EXIT_INPUT_FAILED, EXIT_OK, EXIT_USAGE, MODEL_HELP
from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.package.card import DEMO_NOTICE
from chexnet.inference.scoring.batch_size import batch_size_arg, resolve_for_command
from chexnet.inference.scoring.engine import DEVICES
from chexnet.inference.scoring.tta import TTA_MODES
from chexnet.inference.screen.discovery import ScreenConfigError
from chexnet.inference.screen.pipeline import DEFAULT_TIMEOUT_S, ScreenProgress, ScreenRow, screen
from chexnet.inference.status import Status

SCREEN_EPILOG = """\
examples:
  chexnet screen /data/export --out worklist/        screen a folder tree; open worklist/report.html
  chexnet screen /data/export --out worklist/        run again after a crash or Ctrl-C: resumes
  chexnet screen /data/export --out worklist/ --retry-failed     re-read the files that failed
  chexnet screen /data/export --out wl/ --priority Pneumothorax  sort by one finding
  chexnet screen /mnt/archive --out shard0/ --shard 0/4          machine 1 of 4 (then 1/4, 2/4, 3/4)
  chexnet screen today/ --out wl/ --priors archive/ --priority new  compare with priors; new first

Inputs are walked recursively; DICOM is recognised by content (any suffix), PNG and JPEG too.
Every file gets exactly one row in results.csv: ok, not_analysed (outside the intended use:
lateral views, other body parts, non-radiographs, non-image DICOM objects, with the reason),
error (unreadable, crashed or timed-out decoder, with the reason) or duplicate (same SOP
Instance UID or same content as an earlier file: not screened again, points to it).
Outputs in --out: results.jsonl (append-only journal), results.csv, report.html, thumbs/.
Patient name, ID and birth date appear in no output unless --include-phi; nor do study dates
(prior columns give the interval; patient_key is a salted hash, salt in patient_keys.json).
Exit codes: 0 every file read; 1 some files could not be read (see the error rows);
2 usage error; 130 interrupted (resumable).
"""

LOG_EVERY_S = 10.0


def register(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("screen", help="screen folders into a prioritised worklist (CSV + HTML)",
                       description="Screen every chest X-ray under the inputs with the model: "
                                   "decode in worker processes, score in batches, journal each "
                                   "result, and write a worklist sorted by priority "
                                   "(results.csv, report.html).",
                       epilog=SCREEN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="PATH", help="DICOM/PNG/JPEG files or folders")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder (created); holds the journal, CSV, report, thumbnails")
    p.add_argument("--model", metavar="PKG", help=MODEL_HELP)
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="execution device (default: auto = TensorRT, CUDA, then CPU)")
    p.add_argument("--tta", choices=TTA_MODES, default=None,
                   help="test-time augmentation (default: the model card's, the one its "
                        "operating thresholds assume)")
    p.add_argument("--priority", default="max-above-threshold", metavar="RULE",
                   help="worklist order: max-above-threshold (default: highest probability "
                        "among findings at or above their operating point, then the rest by "
                        "abnormal score), abnormal (highest finding probability), new "
                        "(findings new since the patient's prior first), or a "
                        "finding name, e.g. Pneumothorax")
    p.add_argument("--priors", action="append", default=[], type=Path, metavar="DIR",
                   help="a folder of earlier studies (read-only; repeatable): those of the "
                        "inputs' patients are scored too and compared as priors (README "
                        "'Comparing with priors')")
    p.add_argument("--shard", metavar="I/N",
                   help="screen only shard I of N (0-based); the split hashes each file's path "
                        "relative to its input folder, so machines agree whatever the mount "
                        "point, and the N CSVs together cover the input exactly once")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true",
                        help="require an earlier journal in DIR and continue it (resuming is "
                             "already the default when DIR holds one for the same model)")
    resume.add_argument("--fresh", action="store_true",
                        help="discard DIR's earlier journal, CSV, report and thumbnails")
    p.add_argument("--retry-failed", action="store_true",
                   help="screen again the files whose rows are errors")
    p.add_argument("--dicom-out", metavar="DIR", type=Path,
                   help="also write DICOM results per analysed image into DIR (a plain folder "
                        "of .dcm files): a structured report and a heat-map secondary capture "
                        "in the source's study; a resumed run does not write them again")
    p.add_argument("--include-phi", action="store_true",
                   help="put patient name, ID and birth date (DICOM) in the CSV and report")
    p.add_argument("--workers", type=int, default=None,
                   help="decode processes (default: the number of CPU cores)")
    p.add_argument("--batch-size", type=batch_size_arg, default=8, metavar="N|auto",
                   help="images per inference call (default 8); auto: the largest that fits "
                        "the device's free memory")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"give up decoding one file after this long (default "
                        f"{DEFAULT_TIMEOUT_S:g}); it becomes an error row")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images larger than this (default {DEFAULT_MAX_PIXELS:,})")
    p.set_defaults(func=cmd_screen)


class _Progress:
    """A tqdm bar (count, rate, ETA) on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.bar = None
        self.tty = stream.isatty()
        self.last_log = time.monotonic()

    def row(self, row: ScreenRow) -> None:
        if row.status is Status.ERROR:
            self.write(f"error: {row.path}: {row.reason}")

    def progress(self, p: ScreenProgress) -> None:
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=p.total, initial=p.done - p.processed, unit="img",
                                file=self.stream, dynamic_ncols=True)
            self.bar.update(p.done - self.bar.n)
            self.bar.set_postfix(errors=p.counts.get("error", 0), refresh=False)
            return
        now = time.monotonic()
        if now - self.last_log >= LOG_EVERY_S or p.done == p.total:
            self.last_log = now
            eta = f", ETA {p.eta_s / 60:.1f} min" if p.eta_s is not None else ""
            print(f"screen: {p.done}/{p.total} images ({p.rate:.2f} images/s{eta}); "
                  f"{p.counts.get('error', 0)} errors", file=self.stream, flush=True)

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_screen(args: argparse.Namespace) -> int:

    cancel = threading.Event()
    previous = _graceful_interrupt(cancel)
    progress = _Progress(sys.stderr)
    try:
        summary = screen(args.inputs, args.out, model=args.model, device=args.device,
                         workers=args.workers,
                         batch_size=resolve_for_command(args.batch_size, args.model,
                                                        args.device),
                         timeout_s=args.timeout, priority=args.priority, shard=args.shard,
                         include_phi=args.include_phi, retry_failed=args.retry_failed,
                         fresh=args.fresh, require_journal=args.resume,
                         max_pixels=args.max_pixels, tta=args.tta, dicom_out=args.dicom_out,
                         on_row=progress.row, priors=args.priors,
                         on_progress=progress.progress, cancel=cancel)
    except ScreenConfigError as err:  # reported here: under `python -m`, cli's UsageError
        print(f"chexnet screen: error: {err}", file=sys.stderr)  # is another class
        return EXIT_USAGE
    finally:
        progress.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    m = summary.model
    if m is not None:
        chosen = f"  ({summary.model_chosen_by})" if summary.model_chosen_by else ""
        print(f"model  {m.name} {m.version}  sha256 {m.sha256}{chosen}")
        if m.demo:
            print(f"!! {DEMO_NOTICE}")
    if summary.providers:
        print(f"engine {summary.providers[0]}, batch {summary.batch_size}, "
              f"{summary.workers} decode processes")
    print(summary.text())
    print(f"worklist: {summary.csv_path}\nreport:   {summary.report_path}")
    if summary.cancelled:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return EXIT_INPUT_FAILED if summary.counts["error"] else EXIT_OK


def _graceful_interrupt(cancel: threading.Event):
    """First Ctrl-C: finish the batch in hand, write it, stop. Second: stop at once."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nstopping after the images in hand (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    return signal.signal(signal.SIGINT, handler)

