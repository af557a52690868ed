"""``chexnet eval``: join predictions (a CSV, or a model run) with labels, compute every metric,
compare with radiologists and boxes where given, and write metrics.json, report.md and ROC
plots. Without a predictions CSV the model runs: ``--model``, else the one rule every command
follows (the user's default model, else the bundled one: :func:`resolve_model`).

The flow is here; the parts are :mod:`.eval_set` (joining), :mod:`.metrics_summary`,
:mod:`.thresholds`, :mod:`.tta_comparison`, :mod:`.localisation`, :mod:`.reader_study` and
:mod:`.outputs`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.package.card import ModelCard
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.scoring.engine import Engine
from chexnet.training.data.labels import LabelTable, truth_for_model
from chexnet.training.evaluation import confusion
from chexnet.training.evaluation import inputs as eval_io
from chexnet.training.evaluation import outputs as report
from chexnet.training.evaluation import tta_comparison as eval_tta
from chexnet.training.evaluation.calibration_report import calibration_section
from chexnet.training.evaluation.eval_set import EvalSet, align, restrict_to_list
from chexnet.training.evaluation.inputs import EvalInputError
from chexnet.training.evaluation.localisation import pointing_game
from chexnet.training.evaluation.metrics_summary import compute_metrics
from chexnet.training.evaluation.published import published_comparison
from chexnet.training.evaluation.reader_study import compare_with_readers
from chexnet.training.evaluation.thresholds import resolve_thresholds


@dataclass
class EvalOptions:
    """What to evaluate; mirrors the ``chexnet eval`` options."""

    labels: Path
    out: Path
    predictions: Path | None = None  # scores to evaluate; None: run the model
    model: str | None = None  # None (and no predictions): the user's default, else bundled
    data: Path | None = None
    thresholds: str | None = None  # "card", a number, or None for the default
    thresholds_from: str | None = None
    readers: Path | None = None
    panel: tuple[str, ...] = ()
    bbox: Path | None = None
    bootstrap: int = 1000
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8
    max_pixels: int = DEFAULT_MAX_PIXELS
    pointing_tolerance: float = 0.0
    images: Path | None = None  # a list of image names (e.g. test_list.txt) to restrict to
    tta: str | None = None  # test-time augmentation with --model; None: the model card's
    task: str | None = None  # multi-label / single-label; None: the model card's, else multi
    labels_found_in_data: bool = False  # --labels was the Data_Entry file found in --data


@dataclass
class EvalResult:
    metrics: dict
    readers: dict | None
    files: list[Path]
    unreadable: list[str]


@dataclass
class _ModelScores:
    """What running ``--model`` on the located images gave."""

    run: eval_io.ModelRun
    card: ModelCard
    info: dict  # metrics.json's inputs.model
    tta: dict  # metrics.json's tta (the comparison is added later)
    baseline: eval_io.PredictionTable | None = None  # the same images without augmentation


def evaluate(opts: EvalOptions) -> EvalResult:
    """Run the whole evaluation and write its outputs into ``opts.out``."""
    truth = eval_io.load_truth(opts.labels)
    list_note = None
    if opts.images is not None:
        truth, list_note = restrict_to_list(truth, opts.images)
    boxes = eval_io.read_bboxes(opts.bbox) if opts.bbox else []
    scored = _score_with_model(opts, truth, boxes) if opts.predictions is None else None
    preds = (scored.run.predictions if scored is not None
             else eval_io.read_predictions(opts.predictions))
    card = scored.card if scored is not None else None
    task = opts.task or (card.task if card is not None else "multi-label")
    truth = truth_for_model(truth, preds.labels, task)
    data = align(preds, truth)
    if list_note:
        data.notes.insert(0, list_note)
    if scored is not None:
        _note_unscored(data, truth, scored.run)
    thresholds, source, rules = resolve_thresholds(data.labels, card, opts.thresholds,
                                                   opts.thresholds_from)
    published = published_comparison(preds.labels, eval_io.label_file_layout(opts.labels),
                                      data.ids)
    result = compute_metrics(data, thresholds, opts.bootstrap, opts.seed, task=task,
                             published=published, threshold_rules=rules)
    if task == "single-label":
        confusion.plot_confusion(opts.out / "confusion.png", result["confusion"])
        result["confusion"]["figure"] = "confusion.png"
    result["thresholds_source"] = source
    if task == "multi-label":
        result["calibration"] = calibration_section(data.y, data.probs, data.labels)
    if scored is not None:
        result["tta"] = _tta_section(opts, scored, data, truth)
    result["inputs"] = {"labels": str(opts.labels), "predictions": _str(opts.predictions),
                        "model": scored.info if scored is not None else None,
                        "data": _str(opts.data), "readers": _str(opts.readers),
                        "bbox": _str(opts.bbox),
                        "labels_found_in_data": opts.labels_found_in_data,
                        "predictions_model": ({"sha256": list(preds.model_sha256),
                                               "demo": preds.model_demo}
                                              if scored is None and preds.model_sha256
                                              else None)}
    result["dropped"] = data.dropped
    result["notes"] = data.notes
    if boxes:
        result["pointing_game"] = pointing_game(boxes, scored.run.cams, data.labels,
                                                opts.pointing_tolerance)
    readers = (compare_with_readers(opts.readers, opts.panel, data, thresholds, opts.bootstrap,
                                    opts.seed) if opts.readers else None)
    files = report.write_outputs(opts.out, data, result, readers)
    if scored is not None:
        eval_io.write_predictions(opts.out / "predictions.csv", scored.run.predictions,
                                  scored.info["sha256"], scored.info["demo"])
        files.append(opts.out / "predictions.csv")
    return EvalResult(result, readers[0].summary if readers else None, files,
                      scored.run.unreadable if scored is not None else [])


def _score_with_model(opts: EvalOptions, truth: LabelTable, boxes: list[eval_io.Box]
                      ) -> _ModelScores:
    """Run ``opts.model`` on the label file's images (CAMs kept for boxed ones), and again
    without test-time augmentation when it uses some, timing both."""
    package = resolve_model(opts.model)
    engine = Engine(package, device=opts.device, batch_size=opts.batch_size, tta=opts.tta)
    card = engine.card
    info = {"name": card.name, "version": card.version, "sha256": engine.sha256,
            "demo": card.demo, "provider": engine.providers[0], "tta": engine.tta,
            "path": str(package.path), "chosen_by": package.chosen_by}
    if opts.data is None and not truth.paths:
        raise EvalInputError(truth.source, "names images but gives no paths to them",
                             "give --data DIR with the image files")
    paths = eval_io.locate_images(truth, opts.data)
    have = [k for k, p in enumerate(paths) if p is not None]
    ids, located = [truth.ids[k] for k in have], [paths[k] for k in have]
    tta = {"mode": engine.tta, "thresholds_assume": card.tta, "seconds_per_image": {}}
    started = time.perf_counter()
    run = eval_io.run_model(engine, ids, located, {Path(b.image).name for b in boxes},
                            opts.max_pixels)
    tta["seconds_per_image"][engine.tta] = (time.perf_counter() - started) / max(1, len(ids))
    baseline = None
    if engine.tta != "none":  # the same images without augmentation, for the comparison
        started = time.perf_counter()
        baseline = eval_io.run_model(
            Engine(engine.path, device=opts.device, batch_size=opts.batch_size, tta="none"),
            ids, located, set(), opts.max_pixels).predictions
        tta["seconds_per_image"]["none"] = (time.perf_counter() - started) / max(1, len(ids))
    if not run.predictions.ids:
        raise EvalInputError(opts.data or truth.source, "no image of the label file could "
                             "be scored", "check --data and the label file's names")
    return _ModelScores(run, card, info, tta, baseline)


def _note_unscored(data: EvalSet, truth: LabelTable, run: eval_io.ModelRun) -> None:
    """Count, and say in the notes, why labelled images got no prediction."""
    missing = (len(truth.ids) - len(run.predictions.ids) - len(run.unreadable)
               - len(run.not_analysed))
    data.dropped.update({"image_files_not_found": missing,
                         "unreadable_images": run.unreadable,
                         "not_analysed_images": run.not_analysed})
    why = [f"{n} {what}" for n, what in (
        (missing, "have no file under --data"), (len(run.unreadable), "could not be read"),
        (len(run.not_analysed), "are outside the model's intended use")) if n]
    if why:
        data.notes.append(f"of the labelled images without prediction: {'; '.join(why)}")


def _tta_section(opts: EvalOptions, scored: _ModelScores, data: EvalSet,
                 truth: LabelTable) -> dict:
    """metrics.json's ``tta``: the mode, timings and, with augmentation, the AUROC it adds."""
    tta = scored.tta
    if tta["mode"] != tta["thresholds_assume"]:
        data.notes.append(f"scored with test-time augmentation {tta['mode']}, but the model "
                          f"card's thresholds were chosen with {tta['thresholds_assume']}")
    if scored.baseline is not None:
        base = align(scored.baseline, truth)
        if base.ids != data.ids:  # both runs read the same files: a mismatch is a bug
            raise RuntimeError("the runs with and without test-time augmentation scored "
                               "different images")
        tta["comparison"] = eval_tta.tta_comparison(
            tta["mode"], data.y, data.probs, base.probs, data.labels, data.patients,
            opts.bootstrap, opts.seed)
    return tta


def _str(path) -> str | None:
    return None if path is None else str(path)
