"""``chexnet tune``: a site's own version of a model package.

Scores the site's labelled images with the package through the engine (its card's test-time
augmentation; the same path as ``chexnet eval``: :mod:`chexnet.training.evaluation.inputs`),
chooses thresholds (and optionally a calibration) with :mod:`~chexnet.training.evaluation.
tuning`, and writes a new package version: the same graph (plus the calibration nodes with
``--calibrate``: :mod:`.calibration_graph`) and a new card that says what was done, on what,
and what it is worth. The file is written atomically, and only after it opens as a package and
gives the source's cams and ood scores, and probs equal to the numpy calibration of the
source's, on a few of the site's images. numpy, scikit-learn, onnx and ONNX Runtime; no torch.
"""

from __future__ import annotations

import datetime
import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.package.card import ModelCard, attach_card, match_label
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.package.verify import VerifiedPackage, open_package
from chexnet.inference.scoring.engine import Engine
from chexnet.training.data.labels import truth_for_model
from chexnet.training.evaluation import inputs as eval_io
from chexnet.training.evaluation.calibration import apply_platt
from chexnet.training.evaluation.eval_set import EvalSet, align
from chexnet.training.evaluation.tuning import DEFAULT_MIN_POSITIVES, TuneResult, tune
from chexnet.training.package.calibration_graph import (
    add_calibration,
    compose,
    current_calibration,
)
from chexnet.training.package.graph_check_inputs import first_model_inputs

#: The largest difference allowed between the written graph's probs and the numpy reference.
PROBS_TOLERANCE = 1e-5


@dataclass(frozen=True)
class TuneOptions:
    """What ``chexnet tune`` was asked (its options)."""

    labels: Path
    data: Path | None
    rule: str
    per_class: Mapping[str, str] | None = None  # label -> rule
    min_positives: int = DEFAULT_MIN_POSITIVES
    calibrate: bool = False
    bootstrap: int = 1000
    folds: int = 5
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8
    date: str | None = None  # ISO date; default today


@dataclass
class Tuned:
    path: Path
    card: ModelCard
    result: TuneResult
    evalset: EvalSet
    unreadable: list[str]
    max_abs_diff_probs: float


def score_site(package: VerifiedPackage, opts: TuneOptions
               ) -> tuple[EvalSet, list[str], Engine, list[Path]]:
    """The site's labelled images scored by ``package`` (with its card's TTA): the aligned
    set, the unreadable files, the engine and the files scored."""
    truth = eval_io.load_truth(opts.labels)
    engine = Engine(package, device=opts.device, batch_size=opts.batch_size)
    paths = eval_io.locate_images(truth, opts.data)
    have = [k for k, p in enumerate(paths) if p is not None]
    run = eval_io.run_model(engine, [truth.ids[k] for k in have], [paths[k] for k in have],
                            set())
    if not run.predictions.ids:
        raise eval_io.EvalInputError(opts.data or truth.source, "no image of the label file "
                                     "could be scored", "check --data and the label file")
    data = align(run.predictions, truth_for_model(truth, run.predictions.labels,
                                                  package.card.task))
    # the card's spelling (the evaluation speaks NIH's: "Pleural_Thickening")
    data.labels = tuple(match_label(lb, package.card.labels) or lb for lb in data.labels)
    return data, run.unreadable, engine, [paths[k] for k in have]


def class_rules(labels: tuple[str, ...], rule: str, per_class: Mapping[str, str] | None
                ) -> dict[str, str]:
    """Every label's rule: ``per_class`` (names in any spelling) over the one ``rule``."""
    rules = dict.fromkeys(labels, rule)
    for name, spec in (per_class or {}).items():
        label = match_label(name, labels)
        if label is None:
            raise ValueError(f"per-class rule for {name!r}: not a label of the evaluated "
                             f"model ({', '.join(labels)})")
        rules[label] = spec
    return rules


def tuned_card(card: ModelCard, source_sha256: str, result: TuneResult, data: EvalSet,
               opts: TuneOptions, tta: str) -> ModelCard:
    """The new version's card: thresholds, the rule, the local sample and what it measured."""
    date = opts.date or datetime.date.today().isoformat()
    thresholds = {**card.thresholds, **result.thresholds}
    kept = result.kept
    summary = (f"site-tuned {date}: {opts.rule}"
               + (" (some classes: their own rule)" if opts.per_class else "")
               + f" on {len(data.ids)} local images"
               + (f"; {len(kept)} of {len(data.labels)} classes kept the source thresholds "
                  f"({', '.join(kept)})" if kept else "")
               + ("; calibrated" if result.calibration is not None else ""))
    rules = dict(card.extra.get("threshold_rules") or {})
    for label, entry in result.classes.items():
        rules[label] = entry.get("kept") or f"{entry['rule']} on the site sample ({date})"
    site = {"date": date, "rule": opts.rule,
            "per_class_rules": {lb: e["rule"] for lb, e in result.classes.items()
                                if e["rule"] != opts.rule},
            "min_positives": opts.min_positives,
            "source": {"name": card.name, "version": card.version, "sha256": source_sha256,
                       "threshold_rule": card.threshold_rule},
            "sample": {"n_images": len(data.ids), "n_patients": len(set(data.patients)),
                       "labels_file": opts.labels.name,
                       "labels_sha256": hashlib.sha256(opts.labels.read_bytes()).hexdigest(),
                       "date": date, "tta": tta},
            "confidence_intervals": f"patient-level bootstrap, {opts.bootstrap} resamples, "
                                    "95%; *_ci: threshold fixed; new_patients: the rule "
                                    "re-applied to each resample, measured out of bag",
            "kept_source_threshold": kept,
            "classes": result.classes}
    extra = {**card.extra, "threshold_rules": rules, "site_tuning": site}
    if result.calibration is not None:
        extra["calibration"] = result.ece
    return replace(card, version=f"{card.version}+site.{date.replace('-', '')}",
                   thresholds=thresholds, threshold_rule=summary, extra=extra)


def check_graph(source: Engine, staged: Path, inputs: np.ndarray,
                relative: tuple[np.ndarray, np.ndarray] | None) -> float:
    """Max |probs - reference|, raising unless the staged package opens, its cams and ood
    scores are the source's and its probs the numpy calibration of the source's
    (``relative``: the new parameters on top of what the source graph does; None: unchanged)."""
    new = Engine(open_package(staged, check_registry=False), device="cpu")
    x, y = source.run(inputs), new.run(inputs)
    ref = x.probs if relative is None else apply_platt(x.probs, *relative)
    dp = float(np.max(np.abs(y.probs - ref)))
    dc = float(np.max(np.abs(y.cams - x.cams)))
    do = 0.0 if x.ood is None else float(np.max(np.abs(y.ood - x.ood)))
    if dp > PROBS_TOLERANCE or dc > 1e-6 or do > 1e-6 or (x.ood is None) != (y.ood is None):
        raise RuntimeError(f"{staged.name}: the new graph's outputs are not the expected ones "
                           f"(max |probs - reference| {dp:.1e}, |cams diff| {dc:.1e}, |ood diff| "
                           f"{do:.1e})")
    return dp


def tune_package(model: str | Path | None, out: Path, opts: TuneOptions) -> Tuned:
    """Score, tune, and write the new package version to ``out`` (see the module docstring)."""
    package = resolve_model(model)
    card = package.card
    if opts.calibrate and card.task != "multi-label":
        raise ValueError(f"--calibrate is for multi-label models (one sigmoid per label); "
                         f"{card.name} is {card.task}")
    data, unreadable, engine, files = score_site(package, opts)
    old = {lb: card.threshold(lb) for lb in data.labels}
    rules = class_rules(data.labels, opts.rule, opts.per_class)
    result = tune(data.y, data.probs, data.patients, data.labels, old, rules,
                  min_positives=opts.min_positives, calibrate=opts.calibrate,
                  n_resamples=opts.bootstrap, folds=opts.folds, seed=opts.seed)
    new_card = tuned_card(card, package.sha256, result, data, opts, engine.tta)
    proto = onnx.load(str(package.path))
    relative = None
    if result.calibration is not None:
        cols = [data.labels.index(lb) if lb in data.labels else None for lb in card.labels]
        a = np.array([1.0 if c is None else result.calibration.a[c] for c in cols])
        b = np.array([0.0 if c is None else result.calibration.b[c] for c in cols])
        relative = (a, b)
        before = current_calibration(proto)
        proto = add_calibration(proto, *(compose(before, relative) if before else relative))
    attach_card(proto, new_card)
    onnx.checker.check_model(proto)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / (Path(out).name + ".part")
        onnx.save(proto, str(staged))
        diff = check_graph(engine, staged, first_model_inputs(files, card.preprocess), relative)
        write_atomic(out, staged.read_bytes())
    return Tuned(Path(out), new_card, result, data, unreadable, diff)
