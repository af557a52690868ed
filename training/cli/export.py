"""``chexnet export RUN_OR_CKPT --out model.onnx``: a training run -> a checked model package.

Registered as a ``chexnet`` subcommand through the ``chexnet.commands`` entry point; torch is
imported only when the command runs.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

from chexnet.inference.scoring.tta import TTA_MODES

log = logging.getLogger(__name__)

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
    from chexnet.inference.cli.common import UsageError

    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise UsageError("`chexnet export` needs torch: pip install 'chexnet[train]'") from err
    try:
        report, card = export_run(args)
        if args.evaluate_test:
            card = add_test_metrics(args.source if args.source.is_dir() else args.source.parent,
                                    args.out, card)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from err
    print(f"wrote {report.path}: {card.name} {card.version}, {len(card.labels)} labels, "
          f"demo={card.demo}; ONNX Runtime vs torch on {report.n_inputs} validation images: "
          f"max |probs diff| {report.max_abs_diff_probs:.1e} (limit 1e-4)")
    test = card.extra.get("test_metrics", {}).get("per_class", {})
    for label in card.labels:
        auc = card.validation_metrics.get("auroc", {}).get(label)
        line = (f"  {label:<20} threshold {card.threshold(label):.3f}   validation AUROC "
                f"{'n/a' if auc is None else f'{auc:.3f}'}")
        if label in test:
            t = test[label]
            ci = t.get("auroc_ci") or [None, None]
            line += ("   test AUROC n/a" if t.get("auroc") is None else
                     f"   test AUROC {t['auroc']:.3f} ({ci[0]:.3f}-{ci[1]:.3f})")
        print(line)
    return 0


def add_test_metrics(run_dir: Path, package: Path, card):
    """Evaluate ``package`` on the run's test split and store the headline metrics in its card
    (the ONNX file is rewritten with the new card and loaded again to check it)."""
    import dataclasses
    import json

    from chexnet.training.evaluation.evaluate import EvalOptions, evaluate
    from chexnet.training.evaluation.radiologist_reads import canonical_label

    info = json.loads((run_dir / "run.json").read_text())
    data = Path(info["data_path"])
    labels = data / next(n for n in ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
                         if (data / n).is_file()) if data.is_dir() else data
    out = run_dir / "test_eval"
    result = evaluate(EvalOptions(labels=labels, out=out, model=str(package),
                                  data=data if data.is_dir() else data.parent,
                                  images=run_dir / "splits" / "test_list.txt",
                                  thresholds="card", device="cpu"))
    m = result.metrics
    ours = {canonical_label(lb): lb for lb in card.labels}  # eval spells NIH labels its way
    keep = ("auroc", "auroc_ci", "n_positive", "n_negative", "sensitivity", "specificity", "f1")
    summary = {"split": "the run's held-out test split (splits/test_list.txt)",
               "n_images": m["n_images"], "n_patients": m["n_patients"],
               "mean_auroc": m["mean_auroc"], "mean_auroc_ci": m.get("mean_auroc_ci"),
               "per_class": {ours.get(lb, lb): {k: v.get(k) for k in keep}
                             for lb, v in m["per_class"].items()},
               "ci_method": "95% percentile CI, 1000 patient-level bootstrap resamples",
               "tta": card.tta}
    comp = m.get("tta", {}).get("comparison")
    if comp:
        summary["tta_comparison"] = {k: comp[k] for k in (
            "mean_auroc", "delta_mean_auroc", "delta_mean_auroc_ci", "ci_method")}
    card = dataclasses.replace(card, extra={**card.extra, "test_metrics": summary})
    _rewrite_card(package, card)
    return card


def _rewrite_card(package: Path, card) -> None:
    """Replace the card inside ``package``; the rewritten file must load and match its card."""
    import onnx

    from chexnet.inference.package.card import attach_card
    from chexnet.inference.scoring.engine import Engine

    proto = onnx.load(str(package))
    attach_card(proto, card)
    tmp = package.with_name(package.name + ".part")
    onnx.save(proto, str(tmp))
    Engine(tmp, device="cpu")
    tmp.replace(package)


def thresholds_with_tta(package: Path, card, val: dict, table, mode: str, rule: str):
    """Score the run's validation images with ``package`` under test-time augmentation ``mode``,
    choose the thresholds (``rule``) and validation AUROCs on those scores, and write the card
    (``tta = mode``) back into the package. Returns the new card."""
    import dataclasses

    import numpy as np

    from chexnet.inference.io.study import load_image
    from chexnet.inference.scoring.engine import Engine
    from chexnet.training.evaluation.metrics import choose_thresholds
    from chexnet.training.fit.train import validation_aurocs

    engine = Engine(package, tta=mode, check_registry=False)
    where = {str(i): k for k, i in enumerate(table.ids)}
    ids = [str(i) for i in val["ids"]]
    probs, kept = [], []
    for start in range(0, len(ids), engine.batch_size):
        chunk = ids[start:start + engine.batch_size]
        preds = engine.predict([load_image(table.paths[where[i]]) for i in chunk])
        for j, pred in enumerate(preds):
            if pred.analysed:
                probs.append(pred.probabilities)
                kept.append(start + j)
    if len(kept) < len(ids):
        log.warning("%d validation image(s) outside the intended use were left out of the "
                    "%s thresholds", len(ids) - len(kept), mode)
    y, probs = val["y"][kept], np.stack(probs).astype(np.float64)
    thresholds = choose_thresholds(y, probs, rule=rule, labels=card.labels)
    card = dataclasses.replace(
        card, tta=mode,
        thresholds={lb: float(t) for lb, t in zip(card.labels, thresholds, strict=True)},
        threshold_rule=f"{card.threshold_rule}, on the package's {mode} scores (test-time "
                       "augmentation: probabilities averaged over the crops)",
        validation_metrics={**card.validation_metrics, "n_images": len(y), "tta": mode,
                            "auroc": validation_aurocs(y, probs, card.labels),
                            "auroc_without_tta": card.validation_metrics.get("auroc")})
    _rewrite_card(package, card)
    return card


def export_run(args: argparse.Namespace):
    import numpy as np
    import torch

    from chexnet.inference.io.study import load_image
    from chexnet.inference.package.card import ModelCard
    from chexnet.inference.preprocessing import PreprocessSpec, preprocess
    from chexnet.training.data.dataset import load_dataset
    from chexnet.training.evaluation.metrics import choose_thresholds
    from chexnet.training.fit.cam_model import build_model
    from chexnet.training.fit.run_folder import RunFolder, load_checkpoint
    from chexnet.training.fit.train import validation_aurocs
    from chexnet.training.package.export import export_package

    source = args.source
    run_dir = source if source.is_dir() else source.parent
    ckpt_path = source / "best.pt" if source.is_dir() else source
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"{ckpt_path}: no checkpoint (train first with chexnet-train)")
    run = RunFolder(run_dir)
    if not (run_dir / "run.json").is_file() or not (run_dir / "val_predictions.npz").is_file():
        raise FileNotFoundError(f"{run_dir}: run.json or val_predictions.npz missing; export "
                                "needs the run folder chexnet-train wrote")
    state, info, val = load_checkpoint(ckpt_path), run.info, run.load_val_predictions()
    labels = tuple(state["labels"])
    cfg = info["config"]
    task = cfg.get("task", "multi-label")  # runs from before the task option: multi-label
    model = build_model(state["arch"], len(labels), task=task)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise ValueError(f"{ckpt_path}: weights do not fit a {state['arch']} with "
                         f"{len(labels)} labels ({str(err).splitlines()[0]})") from None
    val_epoch = int(val["epoch"]) if "epoch" in val else None
    if "epoch" not in state or val_epoch != int(state["epoch"]):
        raise ValueError(f"{ckpt_path}: not the checkpoint the run's validation predictions "
                         f"belong to (epoch {state.get('epoch')} vs {val_epoch}); export the "
                         "run folder or its best.pt, from a run of this chexnet version")
    y, probs = val["y"], val["probs"]
    thresholds = choose_thresholds(y, probs, rule=args.threshold_rule, labels=labels)
    aurocs = validation_aurocs(y, probs, labels)
    spec = PreprocessSpec(size=cfg["size"], resize=cfg["resize"])
    splits = load_dataset(Path(info["data_path"]), labels=cfg["labels"],
                          val_fraction=cfg["val_fraction"], test_fraction=cfg["test_fraction"],
                          seed=cfg["seed"], allow_missing=True, task=task)
    val_paths = [splits.table.paths[i] for i in splits.val[:4]]
    check = np.stack([preprocess(load_image(p).display_u8(), spec)[0] for p in val_paths])
    rule_text = {"max_f1": "per class, the threshold maximising F1 on the validation split",
                 "youden": "per class, the threshold maximising Youden's J (sensitivity + "
                           "specificity - 1) on the validation split"}[args.threshold_rule]
    if task == "single-label":
        rule_text += ("; single-label (softmax) model: the predicted class is the most probable "
                      "one, and a class whose probability reaches its threshold is marked above "
                      "its operating point")
    card = ModelCard(
        name=args.name or (f"chexnet-{state['arch']}-{cfg['labels']}"
                           + ("-single" if task == "single-label" else "")),
        version=args.version or time.strftime("%Y.%m.%d"),
        labels=labels, preprocess=spec,
        thresholds={lb: float(t) for lb, t in zip(labels, thresholds, strict=True)},
        threshold_rule=rule_text, demo=not args.no_demo, arch=state["arch"], task=task,
        description=args.description, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        training_data=info["data"],
        validation_metrics={"auroc": aurocs, "n_images": len(y),
                            "best_epoch": int(state["epoch"])},
        extra={"seed": cfg["seed"], "git_commit": info.get("git_commit"),
               "train_command": " ".join(info.get("command", [])),
               "checkpoint_sha256": hashlib.sha256(ckpt_path.read_bytes()).hexdigest()})
    torch.manual_seed(0)
    report = export_package(model, card, args.out, check_inputs=check)
    if getattr(args, "tta", "none") != "none":
        card = thresholds_with_tta(args.out, card, val, splits.table, args.tta,
                                   args.threshold_rule)
    return report, card

