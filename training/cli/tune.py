"""``chexnet tune``: a site's own version of a model package (thresholds, optionally a
calibration, chosen on the site's labelled images).

Registered as a ``chexnet`` subcommand through the ``chexnet.commands`` entry-point group.
Needs numpy, scikit-learn, onnx and ONNX Runtime; never torch. The work
(:mod:`chexnet.training.package.tune_package`) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chexnet.inference.cli.common import (
    EXIT_INPUT_FAILED,
    EXIT_OK,
    UsageError,
    non_negative_int,
    positive_int,
)
from chexnet.inference.scoring.providers import DEVICES
from chexnet.training.data.labels import LabelFileError
from chexnet.training.evaluation.markdown import plural
from chexnet.training.evaluation.rules import RULE_HELP, parse_rule

EPILOG = """\
examples:
  chexnet tune --data /data/site --rule sensitivity=0.90 --out site.onnx
      the default model on the images and Data_Entry_2017*.csv (or labels.csv) in the folder
  chexnet tune --model chexnet-demo --data images/ --labels labels.csv --rule youden \\
      --per-class rules.json --calibrate --out site.onnx
  then: chexnet models add site.onnx --name site && chexnet models default site

rules: sensitivity=T (the highest threshold that finds at least T of the positives),
specificity=T (the lowest that clears at least T of the negatives), max-f1, youden.
--per-class JSON: {"Pneumothorax": "sensitivity=0.95", "Nodule": "max-f1"} over --rule.

The new package is the same graph (plus, with --calibrate, per-class Platt scaling of probs:
p' = sigmoid(a logit(p) + b)) with a new card, version "<old>+site.<date>", that records the
rule, the local sample (images, patients, the labels file's sha256, the date), per class the
sensitivity and specificity at the chosen threshold with patient-level bootstrap 95% CIs, the
classes with fewer than --min-positives positives (they keep the source threshold and are not
calibrated), and with --calibrate the parameters and the ECE before/after on held-out folds of
patients. The out-of-distribution check of the source, if any, is kept. predict, screen and the
viewer show the rule beside the model name.

exit codes: 0 written; 1 written, but some image files could not be read (listed); 2 usage or
input error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``tune`` to the ``chexnet`` command line."""
    p = subparsers.add_parser(
        "tune", help="tune a model's thresholds (and calibration) on your site's labelled "
                     "images: writes a new package version",
        description="Choose per-class operating thresholds (and optionally a calibration) on "
                    "local labelled images and write them, with what they are worth, into a "
                    "new version of the model package.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", metavar="PKG",
                   help="model package (.onnx or a name from `chexnet models`; default: your "
                        "default model, else the bundled one)")
    p.add_argument("--data", type=Path, metavar="DIR", required=True,
                   help="folder with the local images (searched recursively by file name)")
    p.add_argument("--labels", type=Path, metavar="CSV",
                   help="truth: NIH Data_Entry CSV or generic CSV (default: the "
                        "Data_Entry_2017*.csv or labels.csv in --data)")
    p.add_argument("--rule", required=True, metavar="RULE", help=RULE_HELP)
    p.add_argument("--per-class", type=Path, metavar="RULES.json",
                   help="JSON object: label -> rule, for the labels that differ from --rule")
    p.add_argument("--min-positives", type=positive_int, default=10, metavar="N",
                   help="classes with fewer local positives keep the source threshold "
                        "(default 10)")
    p.add_argument("--calibrate", action="store_true",
                   help="also fit per-class Platt scaling and bake it into the graph")
    p.add_argument("--out", type=Path, required=True, metavar="NEW.onnx",
                   help="the new package (written atomically)")
    p.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N",
                   help="bootstrap resamples for the 95%% CIs (default 1000)")
    p.add_argument("--folds", type=int, default=5, help="calibration cross-fitting folds")
    p.add_argument("--seed", type=int, default=0, help="bootstrap and fold seed (default 0)")
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=run)


def _per_class(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise UsageError(f"--per-class {path}: cannot be read; check the path") from None
    except ValueError as err:  # the parser's text is not quoted: only where it stopped
        where = (f" (line {err.lineno}, column {err.colno})"
                 if isinstance(err, json.JSONDecodeError) else "")
        raise UsageError(f"--per-class {path}: not a UTF-8 JSON file{where}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise UsageError(f"--per-class {path}: give a JSON object of label -> rule")
    try:
        return {k: parse_rule(v) for k, v in doc.items()}
    except ValueError as err:
        raise UsageError(f"--per-class {path}: {err}") from None


def find_labels(data: Path, given: Path | None) -> Path:
    """--labels, else the NIH Data_Entry_2017*.csv, else a single labels.csv, in --data."""
    from chexnet.training.evaluation.inputs import find_label_file

    if given is not None:
        return given
    found, _ = find_label_file(data)
    if found is None:
        raise UsageError(f"--data {data}: no Data_Entry_2017*.csv or labels.csv in it; give "
                         "--labels CSV")
    print(f"labels: {found} (found in --data)")
    return found


def run(args: argparse.Namespace) -> int:
    from chexnet.training.package.tune_package import TuneOptions, tune_package

    try:
        rule = parse_rule(args.rule)
    except ValueError as err:
        raise UsageError(f"--rule: {err}") from None
    if not args.data.is_dir():
        raise UsageError(f"--data {args.data}: no such folder")
    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    opts = TuneOptions(labels=find_labels(args.data, args.labels), data=args.data, rule=rule,
                       per_class=_per_class(args.per_class), min_positives=args.min_positives,
                       calibrate=args.calibrate, bootstrap=args.bootstrap, folds=args.folds,
                       seed=args.seed, device=args.device, batch_size=args.batch_size)
    try:
        tuned = tune_package(args.model, args.out, opts)
    except (LabelFileError, ValueError) as err:
        raise UsageError(str(err)) from None
    card = tuned.card
    print(f"wrote {tuned.path}: {card.name} {card.version}")
    print(f"operating points: {card.threshold_rule}")
    for label, e in tuned.result.classes.items():
        ci = e["sensitivity_ci"]
        print(f"  {label}: threshold {e['threshold']:.4g}, sensitivity {_f(e['sensitivity'])}"
              + (f" ({ci[0]:.2f}-{ci[1]:.2f})" if ci else "")
              + f", specificity {_f(e['specificity'])}, {plural(e['n_positive'], 'positive')}"
              + (f"; {e['kept']}" if "kept" in e else ""))
    cal = card.extra.get("calibration") if tuned.result.calibration is not None else None
    if cal:
        print(f"calibration: mean ECE {_f(cal['mean_ece_before'])} -> "
              f"{_f(cal['mean_ece_after'])} ({cal['ece']}; {cal['ece_measured_on']})")
    for err in tuned.unreadable:
        print(f"error: {err}", file=sys.stderr)
    return EXIT_INPUT_FAILED if tuned.unreadable else EXIT_OK


def _f(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"
