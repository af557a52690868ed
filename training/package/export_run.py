"""A chexnet-train run -> a checked model package (what ``chexnet export`` does).

The card gets the labels, preprocessing, per-class operating thresholds chosen on the run's
validation split, validation AUROCs, a training data summary, seed, git commit and the demo
flag. With test-time augmentation the thresholds are chosen again on the exported package's own
augmented scores; with ``evaluate_test`` the package is evaluated on the run's held-out test
split and the headline metrics join its card. Every rewrite of the card is loaded again before
it replaces the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from chexnet.inference.io.study import load_image
from chexnet.inference.package.card import ModelCard, attach_card
from chexnet.inference.preprocessing import PreprocessSpec, preprocess
from chexnet.inference.scoring.engine import Engine
from chexnet.training.data.dataset import DATA_ENTRY_NAMES, load_dataset
from chexnet.training.data.labels import LabelTable
from chexnet.training.evaluation.evaluate import EvalOptions, evaluate
from chexnet.training.evaluation.markdown import plural
from chexnet.training.evaluation.metrics import choose_thresholds, threshold_fallback
from chexnet.training.evaluation.radiologist_reads import canonical_label
from chexnet.training.fit.cam_model import build_model
from chexnet.training.fit.run_folder import RunFolder, load_checkpoint
from chexnet.training.fit.validation import validation_aurocs
from chexnet.training.package.export import ExportReport, export_package, save_checked

log = logging.getLogger(__name__)

RULE_TEXT = {"max_f1": "per class, the threshold maximising F1 on the validation split",
             "youden": "per class, the threshold maximising Youden's J (sensitivity + "
                       "specificity - 1) on the validation split"}
#: card.extra["threshold_rules"]: the rule each class's threshold actually came from.
CLASS_RULE_TEXT = {"max_f1": "max F1 on validation", "youden": "max Youden's J on validation"}


def threshold_rules(y: np.ndarray, rule: str, labels: tuple[str, ...], summary: str
                    ) -> tuple[dict[str, str], str]:
    """Per label, the rule :func:`choose_thresholds` applied to it (its ``rule``, or 0.5 where
    the validation split gives it none), and ``summary`` (the card's ``threshold_rule``) saying
    how many classes fell back to 0.5, and why."""
    rules, fell_back = {}, {}
    for c, label in enumerate(labels):
        why = threshold_fallback(np.asarray(y)[:, c], rule)
        rules[label] = (CLASS_RULE_TEXT[rule] if why is None else
                        f"0.5: {why} in the validation split")
        if why is not None:
            fell_back.setdefault(why, []).append(label)
    for why, names in fell_back.items():
        summary += (f"; {len(names)} of {plural(len(labels), 'class')} keep 0.5, {why} in the "
                    f"validation split ({', '.join(names)})")
    return rules, summary


SINGLE_LABEL_RULE = ("; single-label (softmax) model: the predicted class is the most probable "
                     "one, and a class whose probability reaches its threshold is marked above "
                     "its operating point")


def export_run(source: Path, out: Path, *, name: str | None = None, version: str | None = None,
               threshold_rule: str = "max_f1", description: str = "", demo: bool = True,
               tta: str = "none", evaluate_test: bool = False
               ) -> tuple[ExportReport, ModelCard]:
    """Export the run ``source`` (its folder, or its best.pt) to ``out``, checked against
    torch on real validation images. FileNotFoundError/ValueError say what is wrong."""
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
    thresholds = choose_thresholds(y, probs, rule=threshold_rule, labels=labels)
    aurocs = validation_aurocs(y, probs, labels)
    spec = PreprocessSpec(size=cfg["size"], resize=cfg["resize"])
    splits = load_dataset(Path(info["data_path"]), labels=cfg["labels"],
                          val_fraction=cfg["val_fraction"], test_fraction=cfg["test_fraction"],
                          seed=cfg["seed"], allow_missing=True, task=task)
    val_paths = [splits.table.paths[i] for i in splits.val[:4]]
    check = np.stack([preprocess(load_image(p).display_u8(), spec)[0] for p in val_paths])
    rules, rule_text = threshold_rules(y, threshold_rule, labels, RULE_TEXT[threshold_rule])
    if task == "single-label":
        rule_text += SINGLE_LABEL_RULE
    card = ModelCard(
        name=name or (f"chexnet-{state['arch']}-{cfg['labels']}"
                      + ("-single" if task == "single-label" else "")),
        version=version or time.strftime("%Y.%m.%d"),
        labels=labels, preprocess=spec,
        thresholds={lb: float(t) for lb, t in zip(labels, thresholds, strict=True)},
        threshold_rule=rule_text, demo=demo, arch=state["arch"], task=task,
        description=description, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        training_data=info["data"],
        validation_metrics={"auroc": aurocs, "n_images": len(y),
                            "best_epoch": int(state["epoch"])},
        extra={"threshold_rules": rules, "seed": cfg["seed"],
               "git_commit": info.get("git_commit"),
               "train_command": " ".join(info.get("command", [])),
               "checkpoint_sha256": hashlib.sha256(ckpt_path.read_bytes()).hexdigest()})
    torch.manual_seed(0)
    report = export_package(model, card, out, check_inputs=check)
    if tta != "none":
        card = thresholds_with_tta(out, card, val, splits.table, tta, threshold_rule)
    if evaluate_test:
        card = add_test_metrics(run_dir, out, card)
    return report, card


def thresholds_with_tta(package: Path, card: ModelCard, val: dict, table: LabelTable,
                        mode: str, rule: str) -> ModelCard:
    """Score the run's validation images with ``package`` under test-time augmentation ``mode``,
    choose the thresholds (``rule``) and validation AUROCs on those scores, and write the card
    (``tta = mode``) back into the package. Returns the new card."""
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
    rules, summary = threshold_rules(
        y, rule, card.labels, f"{RULE_TEXT[rule]}, on the package's {mode} scores (test-time "
                              "augmentation: probabilities averaged over the crops)")
    rules = {lb: r if r.startswith("0.5:") else f"{r} ({mode} scores)" for lb, r in rules.items()}
    card = dataclasses.replace(
        card, tta=mode,
        thresholds={lb: float(t) for lb, t in zip(card.labels, thresholds, strict=True)},
        threshold_rule=summary + (SINGLE_LABEL_RULE if card.task == "single-label" else ""),
        extra={**card.extra, "threshold_rules": rules},
        validation_metrics={**card.validation_metrics, "n_images": len(y), "tta": mode,
                            "auroc": validation_aurocs(y, probs, card.labels),
                            "auroc_without_tta": card.validation_metrics.get("auroc")})
    rewrite_card(package, card)
    return card


def add_test_metrics(run_dir: Path, package: Path, card: ModelCard) -> ModelCard:
    """Evaluate ``package`` on the run's test split (the full report goes to
    ``run_dir/test_eval``) and store the headline metrics in its card."""
    info = json.loads((run_dir / "run.json").read_text())
    data = Path(info["data_path"])
    labels = data / next(n for n in DATA_ENTRY_NAMES
                         if (data / n).is_file()) if data.is_dir() else data
    result = evaluate(EvalOptions(labels=labels, out=run_dir / "test_eval", model=str(package),
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
    rewrite_card(package, card)
    return card


def rewrite_card(package: Path, card: ModelCard) -> None:
    """Replace the card inside ``package``; the rewritten file must load and match its card."""
    proto = onnx.load(str(package))
    attach_card(proto, card)
    save_checked(proto, package, lambda staged: Engine(staged, device="cpu"))
