"""``chexnet export RUN_OR_CKPT --out model.onnx``: a training run -> a checked model package.

Registered as a ``chexnet`` subcommand through the ``chexnet.commands`` entry point; torch is
imported only when the command runs. The work is in :mod:`chexnet.training.package.export_run`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chexnet.inference.cli.common import UsageError
from chexnet.inference.preprocessing import TTA_MODES

EPILOG = """\
The package's card gets: labels, preprocessing, per-class operating thresholds chosen on the
run's validation split (--threshold-rule: max_f1 = the threshold maximising F1, youden = the one
maximising sensitivity + specificity - 1), validation AUROCs, a training data summary, seed, git
commit and the demo flag. The file is then reloaded in ONNX Runtime and compared with torch on
real validation images; export fails unless max |probs difference| <= 1e-4.

--tta five-crop|ten-crop: the thresholds are chosen on the exported package's own scores of the
validation images with that test-time augmentation, and the card records it: `chexnet predict`
and `chexnet eval` then use it by default (validation AUROCs with and without it are kept).

examples:
  chexnet export runs/chexnet --out chexnet.onnx
  chexnet export runs/chexnet/best.pt --out chexnet.onnx --name chexnet-nih --version 1.0 --no-demo
  chexnet export runs/chexnet --out chexnet.onnx --tta ten-crop --evaluate-test
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="turn a training run into a model package (.onnx)",
                       description="Export a chexnet-train run (or its best.pt) to a model "
                                   "package checked against torch.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, metavar="RUN_OR_CKPT", help="run folder or best.pt")
    p.add_argument("--out", type=Path, required=True, help="output .onnx path")
    p.add_argument("--name", help="package name (default chexnet-<arch>-<labels>)")
    p.add_argument("--version", default=None,
                   help="package version (default: today's date, YYYY.MM.DD)")
    p.add_argument("--threshold-rule", choices=("max_f1", "youden"), default="max_f1")
    p.add_argument("--description", default="", help="free text for the card")
    p.add_argument("--evaluate-test", action="store_true",
                   help="after exporting, run the package on the run's held-out test split and "
                        "put the test metrics (AUROC with 95%% patient-level bootstrap CIs) in "
                        "its card; the full report goes to RUN/test_eval/")
    p.add_argument("--tta", choices=TTA_MODES, default="none",
                   help="test-time augmentation the package's thresholds assume: they are "
                        "chosen on the package's scores of the validation images with it, and "
                        "predict/eval use it by default (default: none)")
    p.add_argument("--no-demo", action="store_true",
                   help="mark the model as not a demo (only for models trained and validated "
                        "on a full data set; the default marks every package demo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401  (only to name what is missing, before any work)
    except ImportError as err:
        raise UsageError("`chexnet export` needs torch: pip install 'chexnet[train]'") from err
    # Imported here, not at the top: `chexnet` registers this command on every run, and torch
    # (which the export imports) must load only when the export runs.
    from chexnet.training.evaluation.markdown import plural
    from chexnet.training.package.export_run import export_run

    try:
        report, card = export_run(args.source, args.out, name=args.name, version=args.version,
                                  threshold_rule=args.threshold_rule,
                                  description=args.description, demo=not args.no_demo,
                                  tta=args.tta, evaluate_test=args.evaluate_test)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from err
    print(f"wrote {report.path}: {card.name} {card.version}, {plural(len(card.labels), 'label')}, "
          f"demo={card.demo}; ONNX Runtime vs torch on {report.n_inputs} validation images: "
          f"max |probs diff| {report.max_abs_diff_probs:.1e} (limit 1e-4)")
    test = card.extra.get("test_metrics", {}).get("per_class", {})
    rules = card.extra.get("threshold_rules", {})
    print(f"thresholds: {card.threshold_rule}")
    for label in card.labels:
        auc = card.validation_metrics.get("auroc", {}).get(label)
        line = (f"  {label:<20} threshold {card.threshold(label):.3f}   validation AUROC "
                f"{'n/a' if auc is None else f'{auc:.3f}'}")
        if label in test:
            t = test[label]
            ci = t.get("auroc_ci") or [None, None]
            line += ("   test AUROC n/a" if t.get("auroc") is None else
                     f"   test AUROC {t['auroc']:.3f} ({ci[0]:.3f}-{ci[1]:.3f})")
        if str(rules.get(label, "")).startswith("0.5:"):
            line += f"   (threshold {rules[label]})"
        print(line)
    return 0
