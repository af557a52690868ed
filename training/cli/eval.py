"""``chexnet eval``: evaluate a model (or a predictions CSV) against labels, and radiologists.

Registered as a ``chexnet`` subcommand through the ``chexnet.commands`` entry-point group.
Needs numpy, scikit-learn, matplotlib and onnxruntime; never torch. The work is imported only
when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chexnet.inference.cli.common import (
    EXIT_INPUT_FAILED,
    EXIT_OK,
    UsageError,
    non_negative_int,
    unit_interval,
)
from chexnet.inference.package.card import DEMO_NOTICE
from chexnet.inference.preprocessing import TTA_MODES
from chexnet.inference.scoring.providers import DEVICES
from chexnet.training.data.labels import LabelFileError
from chexnet.training.evaluation.markdown import chosen_by_text, plural

EVAL_EPILOG = """\
examples:
  chexnet eval --data /data/ChestX-ray14 --images test_list.txt --out eval/
      run the default model (yours, `chexnet models default`, else the bundled one) on the
      labelled images of an NIH folder; the labels are its Data_Entry_2017*.csv
  chexnet eval --predictions preds.csv --labels Data_Entry_2017.csv --out eval/
      score a predictions CSV (Image Index + one probability column per label)
  chexnet eval --model model.onnx --data images/ --labels Data_Entry_2017.csv --out eval/
      run the model on the labelled images found under images/ (matched by file name)
  chexnet eval --model model.onnx --data images/ --labels Data_Entry_2017.csv \\
      --bbox BBox_List_2017.csv --out eval/          add the CAM pointing game on the boxes
  chexnet eval --model model.onnx --data images/ --labels Data_Entry_2017.csv \\
      --images test_list.txt --tta ten-crop --out eval/
      score with ten-crop test-time augmentation and report the AUROC it adds over none
  chexnet eval --predictions reference_predictions.csv --labels test_labels.csv \\
      --readers test_individual_readers.csv --panel 4343882785,4343883593,4343883996 \\
      --out eval/                                    compare with radiologists

Which model: --model PKG, else your default (`chexnet models default NAME`), else the bundled
default; the summary and report.md say which and how it was chosen.

--labels reads an NIH Data_Entry CSV, a generic CSV (image path, optional patient_id, one 0/1
column per label) or a YES/NO expert-label file (Image ID, Patient ID, one column per finding);
without it, the Data_Entry_2017*.csv (else a labels.csv) in --data. Label names match in any
case and with spaces or underscores ("Pleural Thickening" = "Pleural_Thickening"); no name is
renamed to another. Images or labels present on one side only are left out and counted in the
report. Normal / No Finding is the absence of findings: never ranked, never in the abnormal
score.

The published CheXNet AUROCs are shown beside the model's only for a model of the 14
ChestX-ray14 findings evaluated on NIH ChestX-ray14 images and labels; otherwise report.md says
why there is no comparison.

Writes into --out: metrics.json, report.md, roc/<label>.png, roc_grid.png; with --readers also
readers.json and readers_roc/<label>.png; when a model runs also predictions.csv (with the
model's sha256 and demo flag in the columns model_sha256 and model_demo).
AUROC 95% CIs resample patients (all their images), not images.

exit codes: 0 done; 1 done, but some image files could not be read (listed); 2 usage or input
file error (one line naming the file and what to do).
"""


def _thresholds(text: str) -> str:
    if text == "card":
        return text
    try:
        unit_interval(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'card' nor a number") from None
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` to the ``chexnet`` command line."""
    p = subparsers.add_parser(
        "eval", help="evaluate a model or a predictions CSV against labels and radiologists",
        description="Per-class AUROC with patient-level bootstrap 95% CIs; sensitivity,\n"
                    "specificity and F1 at the operating thresholds; per-image average\n"
                    "precision and top-3 sensitivity; normal-vs-abnormal AUROC; ROC plots;\n"
                    "the published CheXNet AUROCs for reference (ChestX-ray14 models on\n"
                    "NIH data only); optionally radiologist\n"
                    "comparison (--readers) and CAM localisation (--bbox).",
        epilog=EVAL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("what to evaluate (at most one; default: the default model)")
    src.add_argument("--predictions", type=Path, metavar="CSV",
                     help="probabilities: 'Image Index' + one column per label")
    src.add_argument("--model", metavar="PKG",
                     help="model package (.onnx or a name from `chexnet models`) to run on "
                          "--data (default: your default model, else the bundled one)")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="folder with the images (searched recursively by file name), for the "
                        "model")
    p.add_argument("--labels", type=Path, metavar="CSV",
                   help="truth: NIH Data_Entry CSV, generic CSV or YES/NO expert labels "
                        "(default: the Data_Entry_2017*.csv, else labels.csv, in --data)")
    p.add_argument("--out", type=Path, metavar="DIR", required=True,
                   help="output folder (created; files in it are replaced)")
    p.add_argument("--images", type=Path, metavar="LIST",
                   help="evaluate only the images named in this file, one per line (e.g. the "
                        "NIH test_list.txt or a run's splits/test_list.txt)")
    p.add_argument("--thresholds", type=_thresholds, metavar="card|P",
                   help="operating thresholds: 'card' (the model card's) or one probability "
                        "for every label (default: the card's when a model runs or with "
                        "--thresholds-from, else 0.5)")
    p.add_argument("--thresholds-from", metavar="PKG",
                   help="take the thresholds from this model package's card")
    p.add_argument("--readers", type=Path, metavar="CSV",
                   help="individual radiologist reads (one row per reader per image, YES/NO)")
    p.add_argument("--panel", metavar="ID,ID,...",
                   help="reader IDs whose majority is the truth for the reader comparison; "
                        "the others are compared (default: each reader against the majority "
                        "of the other readers)")
    p.add_argument("--bbox", type=Path, metavar="CSV",
                   help="NIH BBox_List_2017.csv: CAM pointing game (needs a model run on --data)")
    p.add_argument("--pointing-tolerance", type=float, default=0.0, metavar="PX",
                   help="pointing game: count a CAM peak within PX pixels of the box as a hit "
                        "(default 0; Zhang et al. 2016 use 15 at full resolution)")
    p.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                   help="bootstrap resamples for the 95%% CIs (default 1000; 0: no CIs)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--device", choices=DEVICES, default="auto",
                   help="execution device for the model (default auto)")
    p.add_argument("--batch-size", type=int, default=8,
                   help="model inputs per inference call: images, or crops with --tta")
    p.add_argument("--task", choices=("multi-label", "single-label"), default=None,
                   help="how to read the scores: single-label = softmax, the predicted class is "
                        "the most probable (K x K confusion matrix); multi-label = per-label "
                        "calls at the thresholds (2 x 2 per label). Default: the model's card, "
                        "else multi-label")
    p.add_argument("--tta", choices=TTA_MODES, default=None,
                   help="test-time augmentation of the model run: five-crop (4 corners + centre of "
                        "a larger resize, the hospital CAD paper's 5-patch testing) or ten-crop "
                        "(those and their mirror images, as arnoweng/CheXNet does); the images "
                        "are also scored without it and the AUROC difference is reported, with "
                        "paired patient-level bootstrap CIs (default: the model card's tta)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `chexnet` registers this command on every run, and the
    # evaluation's scikit-learn and matplotlib must load only when it runs.
    from chexnet.training.evaluation.evaluate import EvalOptions, evaluate

    if args.model and args.predictions:
        raise UsageError("give either --predictions CSV or --model PKG, not both (without "
                         "either, the default model runs)")
    if args.data and args.predictions:
        raise UsageError("--data is for running a model; a predictions CSV needs no images")
    if args.panel and not args.readers:
        raise UsageError("--panel needs --readers CSV")
    if args.bbox and (args.predictions or not args.data):
        raise UsageError("--bbox needs a model run on --data DIR: the CAMs come from running "
                         "the model")
    if args.tta and args.predictions:
        raise UsageError("--tta is for running a model: a predictions CSV is scored as it is")
    if args.thresholds == "card" and args.predictions and not args.thresholds_from:
        raise UsageError("--thresholds card needs a model (--model, or no --predictions) or "
                         "--thresholds-from PKG")
    if args.thresholds not in (None, "card") and args.thresholds_from:
        raise UsageError("give --thresholds P or --thresholds-from PKG, not both")
    if args.data and not args.data.is_dir():
        raise UsageError(f"--data {args.data}: no such folder")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out}: is a file, not a folder (give a folder path)")
    labels, found = _labels(args)
    panel = tuple(p.strip() for p in (args.panel or "").split(",") if p.strip())
    opts = EvalOptions(labels=labels, out=args.out, predictions=args.predictions,
                       model=args.model, data=args.data, thresholds=args.thresholds,
                       thresholds_from=args.thresholds_from, readers=args.readers, panel=panel,
                       bbox=args.bbox, bootstrap=args.bootstrap, seed=args.seed,
                       device=args.device, batch_size=args.batch_size, images=args.images,
                       pointing_tolerance=args.pointing_tolerance, tta=args.tta,
                       task=args.task, labels_found_in_data=found)
    try:
        result = evaluate(opts)
    except LabelFileError as err:
        raise UsageError(str(err)) from None
    m = result.metrics
    model = m["inputs"].get("model")
    if model:
        print(f"model: {model['name']} {model['version']} (sha256 {model['sha256'][:12]}), "
              f"{chosen_by_text(model['chosen_by'])}"
              + (f"; {DEMO_NOTICE}" if model["demo"] else ""))
    print(f"evaluated {plural(m['n_images'], 'image')} of {plural(m['n_patients'], 'patient')}; "
          f"mean AUROC {_fmt(m['mean_auroc'])} over {plural(len(m['mean_auroc_over']), 'class')}")
    conf = m.get("confusion", {})
    if conf.get("kind") == "single-label":
        print(f"single-label: accuracy {_fmt(conf['accuracy'])} on "
              f"{plural(conf['n_images'], 'image')} "
              "(confusion matrix in the report)")
    comp = m.get("tta", {}).get("comparison")
    if comp:
        ci, mode, mean = comp["delta_mean_auroc_ci"], comp["mode"], comp["mean_auroc"]
        print(f"test-time augmentation {mode}: mean AUROC {_fmt(mean['none'])} without, "
              f"{_fmt(mean[mode])} with"
              + ("" if comp["delta_mean_auroc"] is None else
                 f"; difference {comp['delta_mean_auroc']:+.4f}")
              + (f" (95% CI {ci[0]:+.4f} to {ci[1]:+.4f})" if ci else ""))
    for label, reason in m["mean_auroc_excluded"].items():
        print(f"  {label}: AUROC undefined ({reason})")
    for note in m["notes"]:
        print(f"note: {note}")
    if result.readers:
        print(f"readers compared: {', '.join(result.readers['comparison_readers'])}")
    print(f"report: {args.out / 'report.md'}")
    for err in result.unreadable:
        print(f"error: {err}", file=sys.stderr)
    return EXIT_INPUT_FAILED if result.unreadable else EXIT_OK


def _labels(args: argparse.Namespace) -> tuple[Path, bool]:
    """--labels, else the Data_Entry_2017*.csv or labels.csv in --data (said on stdout);
    (path, found)."""
    from chexnet.training.evaluation.inputs import find_label_file

    if args.labels is not None:
        return args.labels, False
    if args.data is None:
        raise UsageError("give --labels CSV (the truth), or --data DIR holding the NIH "
                         "Data_Entry_2017*.csv or a labels.csv")
    found, candidates = find_label_file(args.data)
    if found is None:
        raise UsageError(f"--data {args.data}: no Data_Entry_2017*.csv or labels.csv in it to "
                         "take the labels from; give --labels CSV")
    others = [c.name for c in candidates if c != found]
    print(f"labels: {found} (found in --data; --labels CSV to use another file"
          + (f"; also there: {', '.join(others)}" if others else "") + ")")
    return found, True


def _fmt(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4f}"
