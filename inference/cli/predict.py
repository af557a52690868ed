"""``chexnet predict``: rank the findings for images or studies; optional CAM overlay PNGs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from chexnet.inference.cli.common import (
    EXIT_INPUT_FAILED,
    EXIT_OK,
    MODEL_HELP,
    UsageError,
    unit_interval,
)
from chexnet.inference.dicom_out import write_dicom_results
from chexnet.inference.errors import ChexnetInputError, DicomResultsError, NotAnImageError
from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.io.image import Image
from chexnet.inference.io.image_file import ImageFile
from chexnet.inference.io.study import Instance, scan
from chexnet.inference.package.card import match_finding, unknown_finding_message
from chexnet.inference.package.lookup import resolve_model, sample_study_path
from chexnet.inference.render.overlay import write_cam_png
from chexnet.inference.render.text import model_header, prediction_text, safe_name
from chexnet.inference.scoring.batch_size import batch_size_arg
from chexnet.inference.scoring.engine import DEVICES, Engine
from chexnet.inference.scoring.file_input import ERROR, message, read_input
from chexnet.inference.scoring.prediction import Prediction
from chexnet.inference.scoring.tta import TTA_MODES
from chexnet.inference.status import Status

log = logging.getLogger(__name__)

PREDICT_EPILOG = """\
examples:
  chexnet predict study.dcm                      rank the 14 findings for one image
  chexnet predict /data/study_folder --json      a folder is a study: every image, frontal first
  chexnet predict cxr.png --cam-out cams/ --finding Effusion --threshold 0.6
  chexnet predict --sample --model my-model      the bundled sample: a real CR chest PA (DICOM)
  chexnet predict now.dcm --prior before.dcm     what changed since the prior (delta, new/resolved)

Inputs are recognised by content: DICOM with or without suffix, PNG, JPEG. Images outside the
model's intended use (lateral views, other body parts, non-radiographs) are reported as
"not analysed" with the reason, never silently scored.
"""



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="rank the 14 findings for images or studies",
                       description="Rank the ChestX-ray14 findings for each image, mark those "
                                   "above the model's operating points, optionally write CAM "
                                   "overlays.", epilog=PREDICT_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="*", metavar="PATH", help="DICOM/PNG/JPEG files or folders")
    p.add_argument("--sample", action="store_true",
                   help="also analyse the bundled sample study (a real CR chest PA radiograph "
                        "from pydicom-data); PATHs are optional with it")
    p.add_argument("--model", metavar="PKG", help=MODEL_HELP)
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="execution device (default: auto = TensorRT, CUDA, then CPU)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    p.add_argument("--cam-out", metavar="DIR", type=Path,
                   help="write a PNG per image with the CAM of the top finding overlaid")
    p.add_argument("--dicom-out", metavar="DIR", type=Path,
                   help="write DICOM results per analysed image into DIR: a structured report "
                        "(TID 1500) and a heat-map secondary capture, in the source's study")
    p.add_argument("--finding", metavar="NAME",
                   help="overlay this finding's CAM instead of the top one")
    p.add_argument("--threshold", type=unit_interval, default=0.5,
                   help="CAM values below this, after scaling each map to 0..1 (min..max), are "
                        "transparent (default 0.5)")
    p.add_argument("--opacity", type=unit_interval, default=0.5,
                   help="overlay opacity, 0..1 (default 0.5)")
    p.add_argument("--batch-size", type=batch_size_arg, default=8, metavar="N|auto",
                   help="model inputs per inference call: images, or crops with --tta; auto: "
                        "the largest that fits the device's free memory (default 8)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help=f"refuse images larger than this (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--tta", choices=TTA_MODES, default=None,
                   help="test-time augmentation: five-crop = 4 corners + centre of a larger "
                        "resize, ten-crop = those and their mirror images; probabilities "
                        "averaged, CAMs merged over the image (default: the model card's, the "
                        "one its thresholds assume)")
    p.add_argument("--prior", metavar="FILE", type=Path,
                   help="an earlier image (or study folder) of the same patient: also print "
                        "the change per finding (now, before, delta, new/resolved)")
    p.add_argument("--include-phi", action="store_true",
                   help="with --prior: show the prior's study date (default: the interval)")
    p.set_defaults(func=cmd_predict)


def _ordered_instances(inputs: Sequence[str]) -> tuple[list[Instance], list[ChexnetInputError]]:
    """All inputs grouped into studies (by UIDs; PNG/JPEG by folder), frontal images first."""
    gone = [p for p in inputs if not Path(p).exists() and not Path(p).is_symlink()]
    missing = [ChexnetInputError(p, "no such file or folder", "check the path") for p in gone]
    result = scan([p for p in inputs if p not in gone])  # a broken link: scan names it
    instances = [inst for study in result.studies for inst in study.instances]
    return instances, missing + result.skipped


def _report(engine: Engine, pred: Prediction, image: Image | None, args: argparse.Namespace,
            used_stems: set[str], opened: ImageFile | None = None) -> dict:
    """One result: its CAM overlay (``--cam-out``) and DICOM results (``--dicom-out``)
    written, its text printed (unless --json); returns its JSON entry."""
    entry = pred.to_dict()
    if args.dicom_out is not None and pred.analysed and image is not None:
        try:
            written = write_dicom_results(opened or image.path, image, pred, engine.model_id,
                                          engine.card, args.dicom_out)
            entry["dicom"] = {"sr": str(written.sr), "sc": str(written.sc)}
        except DicomResultsError as err:  # the result stands; only its DICOM copy is missing
            print(f"error: {err}", file=sys.stderr)
            entry["dicom"] = {"error": str(err)}
    if args.cam_out is not None and pred.analysed and image is not None:
        finding = args.finding or pred.top.label
        stem = safe_name(image.path.stem)
        base, n = stem, 1
        while stem in used_stems:
            n += 1
            stem = f"{base}-{n}"
        used_stems.add(stem)
        path = write_cam_png(image, pred, finding, args.cam_out, stem=stem,
                             threshold=args.threshold, opacity=args.opacity)
        entry["cam_png"] = {"finding": finding, "path": str(path)}
    if not args.json:
        print("\n" + "\n".join(prediction_text(pred, image)), file=sys.stdout)
        if "cam_png" in entry:
            print(f"  CAM ({entry['cam_png']['finding']}): {entry['cam_png']['path']}",
                  file=sys.stdout)
        if "sr" in entry.get("dicom", {}):
            print(f"  DICOM SR: {entry['dicom']['sr']}\n  DICOM SC: {entry['dicom']['sc']}",
                  file=sys.stdout)
    return entry


def cmd_predict(args: argparse.Namespace) -> int:
    if args.sample:
        args.inputs = [*args.inputs, str(sample_study_path())]
    if not args.inputs:
        raise UsageError("give DICOM/PNG/JPEG files or folders to analyse, or --sample for the "
                         "bundled sample study")
    if args.prior is not None and len(args.inputs) != 1:
        raise UsageError("--prior compares one image (or one study folder) with its prior: "
                         f"give one input, not {len(args.inputs)}")
    engine = Engine(resolve_model(args.model), device=args.device, batch_size=args.batch_size,
                    tta=args.tta)
    if args.finding:  # any spelling of a label: "pleural effusion" names Pleural_Effusion
        finding = match_finding(args.finding, engine.labels)
        if finding is None:
            raise UsageError(unknown_finding_message(args.finding, engine.labels))
        args.finding = finding
    instances, failures = _ordered_instances(args.inputs)
    if not instances and not failures:
        raise UsageError("no files found in the given folder(s)")
    out = sys.stdout
    if not args.json:
        print("\n".join(model_header(engine.model_id, engine.card, engine.providers,
                                     engine.package.chosen_by)), file=out)
        if engine.tta != "none" or engine.card.tta != "none":
            print(f"test-time augmentation: {engine.tta} (the card's thresholds assume "
                  f"{engine.card.tta})", file=out)
    results = []
    scored_predictions: list[tuple[Prediction, ImageFile | None]] = []  # for --prior
    used_stems: set[str] = set()
    # Objects that hold no image (a structured report, a PDF) are not analysed, with the reason,
    # as in `chexnet screen`; only unreadable files are errors.
    for err in [e for e in failures if isinstance(e, NotAnImageError)]:
        failures.remove(err)
        results.append(_report(engine, Prediction(
            path=err.path, model=engine.model_id, status=Status.NOT_ANALYSED,
            labels=engine.labels, reasons=(message(err),)), None, args, used_stems))
    for start in range(0, len(instances), engine.batch_size):
        batch = instances[start:start + engine.batch_size]
        reads = [read_input(inst, engine.card.preprocess, tta=engine.tta,
                            max_pixels=args.max_pixels) for inst in batch]
        opened = {id(r): inst.file for r, inst in zip(reads, batch, strict=True)}
        failures += [r.error for r in reads if r.kind == ERROR]
        for read in reads:
            if read.kind != ERROR and read.prepared is None:  # read, but holds no image
                results.append(_report(engine, Prediction(
                    path=read.path, model=engine.model_id, status=Status.NOT_ANALYSED,
                    labels=engine.labels, reasons=read.reasons), None, args, used_stems))
        scored = [r for r in reads if r.prepared is not None]
        for read, pred in zip(scored, engine.score([r.prepared for r in scored]), strict=True):
            scored_predictions.append((pred, opened[id(read)]))
            results.append(_report(engine, pred, read.image, args, used_stems,
                                   opened[id(read)]))
    if args.prior is not None:
        failures += _compare_with_prior(engine, scored_predictions, args)
    for err in failures:
        print(f"error: {err}", file=sys.stderr)
    if args.json:
        card = engine.card
        doc = {"model": {"name": card.name, "version": card.version, "sha256": engine.sha256,
                         "demo": card.demo, "chosen_by": engine.package.chosen_by,
                         "arch": card.arch, "labels": list(card.labels),
                         "threshold_rule": card.threshold_rule, "tta": engine.tta,
                         "thresholds_assume_tta": card.tta,
                         "provider": engine.providers[0], "precision": engine.precision,
                         "batch_size": engine.batch_size},
               "results": results, **({"comparison": args.comparison} if args.prior else {}),
               "errors": [{"path": str(e.path), "error": str(e),
                           "type": type(e).__name__} for e in failures]}
        json.dump(doc, out, indent=2)
        out.write("\n")
    elif results or failures:
        n_ok = sum(r["status"] != Status.NOT_ANALYSED for r in results)
        print(f"\n{n_ok} analysed, {len(results) - n_ok} not analysed, "
              f"{len(failures)} unreadable", file=out)
    return EXIT_INPUT_FAILED if failures else EXIT_OK



def _compare_with_prior(engine: Engine, predictions: list[tuple[Prediction, ImageFile | None]],
                        args: argparse.Namespace) -> list[ChexnetInputError]:
    """--prior: compare the first analysed image with the prior; prints the table (unless
    --json: then ``args.comparison`` holds it). A prior that cannot be read is a failure."""
    from chexnet.inference.priors.against_prior import compare_with_prior, comparison_lines

    current, current_file = next(((p, f) for p, f in predictions if p.analysed), (None, None))
    if current is None:
        args.comparison = {"problem": "no analysed image to compare"}
        if not args.json:
            print("\nno analysed image to compare with the prior", file=sys.stdout)
        return []
    result = compare_with_prior(engine, current, args.prior, max_pixels=args.max_pixels,
                                current_file=current_file)
    args.comparison = {"current": str(current.path), **result.to_dict(args.include_phi)}
    if not args.json:
        print("\n" + "\n".join(comparison_lines(result, args.include_phi)), file=sys.stdout)
    return [ChexnetInputError(args.prior, "the prior could not be read", result.problem)] \
        if result.unreadable else []
