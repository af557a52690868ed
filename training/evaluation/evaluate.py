"""``chexnet eval``: join predictions (a CSV, or a model run) with labels, compute every metric,
compare with radiologists and boxes where given, and write metrics.json, report.md and ROC
plots.

Nothing is dropped silently: images or labels present on one side only are counted, named in
the report, and left out of the metrics.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.package.card import DEFAULT_THRESHOLD
from chexnet.inference.render.cam import cam_on_image
from chexnet.training.data.labels import LabelTable, truth_for_model
from chexnet.training.evaluation import confusion, metrics
from chexnet.training.evaluation import inputs as eval_io
from chexnet.training.evaluation import outputs as report
from chexnet.training.evaluation import tta_comparison as eval_tta
from chexnet.training.evaluation.inputs import EvalInputError
from chexnet.training.evaluation.radiologist_reads import (
    canonical_label,
    compare_readers,
    majority_vote,
    read_individual_readers,
)

log = logging.getLogger(__name__)

TOP_K = 3


@dataclass
class EvalOptions:
    """What to evaluate; mirrors the ``chexnet eval`` options."""

    labels: Path
    out: Path
    predictions: Path | None = None
    model: str | None = None
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


def restrict_to_list(truth: LabelTable, list_file: Path) -> tuple[LabelTable, str]:
    """Keep the label file's rows named in ``list_file`` (one image name or path per line)."""
    if not list_file.is_file():
        raise EvalInputError(list_file, "image list not found", "check the --images path")
    wanted = {Path(ln.strip()).name for ln in list_file.read_text().splitlines() if ln.strip()}
    rows = [i for i, name in enumerate(truth.ids) if Path(name).name in wanted]
    if not rows:
        raise EvalInputError(list_file, "none of its images is in the label file",
                             "give the list and the labels of the same data set")
    missing = len(wanted) - len(rows)
    note = (f"restricted to the {len(rows)} labelled image(s) named in {list_file.name}"
            + (f"; {missing} listed name(s) have no label row and were left out" if missing
               else ""))
    return truth.subset(rows), note


@dataclass
class EvalSet:
    """The evaluated images: aligned truth and probabilities."""

    ids: tuple[str, ...]
    patients: tuple[str, ...]
    labels: tuple[str, ...]
    y: np.ndarray
    probs: np.ndarray
    notes: list[str] = field(default_factory=list)
    dropped: dict = field(default_factory=dict)


@dataclass
class EvalResult:
    metrics: dict
    readers: dict | None
    files: list[Path]
    unreadable: list[str]


def _examples(names, n: int = 5) -> list[str]:
    return [str(x) for x in list(names)[:n]]


def align(preds: eval_io.PredictionTable, truth: LabelTable) -> EvalSet:
    """The images and labels present on both sides, with what was left out, and why."""
    pi, ti = eval_io.match_ids(preds.ids, truth.ids)
    common = [lb for lb in truth.labels if lb in preds.labels]
    if len(pi) == 0:
        raise EvalInputError(truth.source, f"no image of the label file is among the "
                             f"{len(preds.ids)} predicted images (e.g. {_examples(preds.ids, 3)})",
                             "check that both files name the same images")
    if not common:
        raise EvalInputError(truth.source, f"no label in common with the predictions "
                             f"({list(preds.labels)})", "check the label column names")
    pred_only = sorted(set(range(len(preds.ids))) - set(pi.tolist()))
    truth_only = sorted(set(range(len(truth.ids))) - set(ti.tolist()))
    notes, dropped = [], {
        "predictions_without_labels": len(pred_only),
        "predictions_without_labels_examples": _examples(preds.ids[i] for i in pred_only),
        "labels_without_predictions": len(truth_only),
        "labels_without_predictions_examples": _examples(truth.ids[i] for i in truth_only),
        "label_columns_without_predictions": [lb for lb in truth.labels if lb not in common],
        "predicted_labels_without_truth": [lb for lb in preds.labels if lb not in common]}
    if pred_only:
        notes.append(f"{len(pred_only)} predicted image(s) are not in the label file and were "
                     "left out")
    if truth_only:
        notes.append(f"{len(truth_only)} labelled image(s) have no prediction and were left out")
    for key, what in (("label_columns_without_predictions", "label column(s) without "
                       "predictions, not evaluated"),
                      ("predicted_labels_without_truth", "predicted label(s) without truth, "
                       "not evaluated")):
        if dropped[key]:
            notes.append(f"{what}: {', '.join(dropped[key])}")
    y = truth.y[ti][:, [truth.labels.index(lb) for lb in common]]
    probs = preds.probs[pi][:, [preds.labels.index(lb) for lb in common]]
    return EvalSet(tuple(truth.ids[i] for i in ti), tuple(truth.patients[i] for i in ti),
                   tuple(common), y, probs, notes, dropped)


def compute_metrics(data: EvalSet, thresholds: np.ndarray, n_resamples: int = 1000,
                    seed: int = 0, level: float = 0.95, task: str = "multi-label") -> dict:
    """Everything metrics.json holds about the model on ``data`` (inputs and notes aside).
    ``task`` picks the confusion matrix: K x K of the argmax (single-label) or per-label 2 x 2
    at the thresholds (multi-label)."""
    y, probs, labels = data.y, data.probs, data.labels
    abn_y, abn_s = metrics.abnormal_truth_and_score(y, probs)
    boot = None
    if n_resamples:
        boot = metrics.bootstrap_auroc(np.column_stack([y, abn_y]),
                                       np.column_stack([probs, abn_s]), data.patients,
                                       n_resamples, seed, level)
    top3, top3_all = metrics.top_k_sensitivity(y, probs, TOP_K)
    per_class, defined = {}, []
    for c, label in enumerate(labels):
        stats = metrics.binary_stats(y[:, c], probs[:, c] >= thresholds[c])
        reason = metrics.undefined_auroc_reason(y[:, c])
        entry = {"auroc": metrics.auroc(y[:, c], probs[:, c]),
                 "auroc_ci": _ci(boot.ci(c)) if boot and reason is None else None,
                 "n_positive": int(y[:, c].sum()), "n_negative": int(len(y) - y[:, c].sum()),
                 "threshold": float(thresholds[c]), "sensitivity": stats["sensitivity"],
                 "specificity": stats["specificity"], "ppv": stats["ppv"], "f1": stats["f1"],
                 "counts": {k: stats[k] for k in ("tp", "fp", "fn", "tn")},
                 "top3_sensitivity": None if np.isnan(top3[c]) else float(top3[c]),
                 "published_chexnet_auroc": report.PUBLISHED_CHEXNET_AUROC.get(label)}
        if reason is None:
            defined.append(c)
            if boot is not None:
                entry["auroc_ci_undefined_resamples"] = boot.n_undefined(c)
        else:
            entry["auroc_reason"] = reason
        per_class[label] = entry
    ap = metrics.per_image_average_precision(y, probs)
    multi = y.sum(axis=1) >= 2
    abn_reason = metrics.undefined_auroc_reason(abn_y)
    return {
        "n_images": len(data.ids), "n_patients": metrics.patient_codes(data.patients)[1],
        "labels": list(labels),
        "mean_auroc": (float(np.mean([per_class[labels[c]]["auroc"] for c in defined]))
                       if defined else None),
        "mean_auroc_ci": _ci(boot.mean_ci(defined)) if boot else None,
        "mean_auroc_over": [labels[c] for c in defined],
        "mean_auroc_excluded": {lb: e["auroc_reason"] for lb, e in per_class.items()
                                if "auroc_reason" in e},
        "per_class": per_class,
        "per_image_average_precision": _nan_mean(ap),
        "per_image_average_precision_n_images": int(np.isfinite(ap).sum()),
        "per_image_average_precision_multi_label": _nan_mean(ap[multi]),
        "per_image_average_precision_multi_label_n_images": int(multi.sum()),
        "top3_sensitivity": {"k": TOP_K, "overall": top3_all,
                             "per_class": {lb: per_class[lb]["top3_sensitivity"]
                                           for lb in labels}},
        "abnormal_auroc": metrics.auroc(abn_y, abn_s),
        "abnormal_auroc_ci": _ci(boot.ci(len(labels))) if boot and abn_reason is None else None,
        "abnormal_auroc_reason": abn_reason,
        "abnormal_definition": "score = highest finding probability; truth = any finding",
        "n_abnormal": int(abn_y.sum()),
        "bootstrap": {"n_resamples": n_resamples, "seed": seed, "level": level,
                      "unit": "patient", "method": "percentile"},
        "task": task,
        "confusion": (confusion.single_label_confusion(y, probs, labels)
                      if task == "single-label" else confusion.multi_label_confusion(per_class)),
    }


def _ci(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else [interval[0], interval[1]]


def _nan_mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _card_of(spec: str):
    from chexnet.inference.package.lookup import resolve_model
    from chexnet.inference.scoring.engine import Engine

    return Engine(resolve_model(spec), device="cpu").card


def resolve_thresholds(opts: EvalOptions, labels: tuple[str, ...], card=None
                       ) -> tuple[np.ndarray, str]:
    """Per-label thresholds and where they came from: a number for all, or a model card's
    (``--thresholds-from``, else the ``--model``'s), 0.5 by default without a model."""
    spec = opts.thresholds or ("card" if card is not None or opts.thresholds_from else None)
    if spec is None:
        return np.full(len(labels), DEFAULT_THRESHOLD), f"{DEFAULT_THRESHOLD} for every label"
    if spec != "card":
        return np.full(len(labels), float(spec)), f"{float(spec):g} for every label (--thresholds)"
    if opts.thresholds_from:
        card, where = _card_of(opts.thresholds_from), f"--thresholds-from {opts.thresholds_from}"
    else:
        where = "the --model package"
    explicit = {canonical_label(lb): float(v) for lb, v in card.thresholds.items()}
    missing = [lb for lb in labels if lb not in explicit]
    values = np.array([explicit.get(lb, DEFAULT_THRESHOLD) for lb in labels])
    source = f"model card of {where} ({card.name} {card.version}; rule: {card.threshold_rule})"
    if missing:
        source += f"; {DEFAULT_THRESHOLD} for labels the card lacks: {', '.join(missing)}"
    return values, source


def pointing_game(boxes: list[eval_io.Box], cams: dict[str, tuple], labels: tuple[str, ...],
                  tolerance: float = 0.0) -> dict:
    """Hit rate per class of the CAM peak inside each radiologist box."""
    by_name = {Path(k).name: v for k, v in cams.items()}
    per_class: dict[str, dict] = {}
    skipped = {"image_not_evaluated": 0, "label_not_predicted": 0}
    for box in boxes:
        if box.label not in labels:
            skipped["label_not_predicted"] += 1
            continue
        if Path(box.image).name not in by_name:
            skipped["image_not_evaluated"] += 1
            continue
        raw, crop_box, shape = by_name[Path(box.image).name]
        heat = cam_on_image(raw[labels.index(box.label)], crop_box, shape)
        hit = metrics.pointing_game_hit(heat, (box.x, box.y, box.w, box.h), tolerance)
        entry = per_class.setdefault(box.label, {"n_boxes": 0, "hits": 0})
        entry["n_boxes"] += 1
        entry["hits"] += int(hit)
    for entry in per_class.values():
        entry["hit_rate"] = entry["hits"] / entry["n_boxes"]
    n = sum(e["n_boxes"] for e in per_class.values())
    return {"per_class": per_class, "n_boxes": n,
            "hit_rate": sum(e["hits"] for e in per_class.values()) / n if n else None,
            "skipped_boxes": skipped,
            "tolerance_px": tolerance,
            "rule": "hit when the peak of the label's CAM, mapped onto the image, lies in the box "
                    f"grown by {tolerance:g} px on each side (Zhang et al. 2016 use 15 px)"}


def reader_comparison(opts: EvalOptions, data: EvalSet, thresholds: np.ndarray):
    table = read_individual_readers(opts.readers)
    unknown = [p for p in opts.panel if p not in table.readers]
    if unknown:
        raise EvalInputError(table.source, f"--panel reader(s) {unknown} are not in it",
                             f"its readers are {', '.join(table.readers)}")
    if opts.panel and len(set(opts.panel)) == len(table.readers):
        raise EvalInputError(table.source, "--panel names every reader, leaving none to compare",
                             "leave at least one reader out of the panel")
    di, ri = eval_io.match_ids(data.ids, table.ids)
    labels = [lb for lb in data.labels if lb in table.labels]
    if len(di) == 0 or not labels:
        raise EvalInputError(table.source, "no evaluated image or finding is in it",
                             "check that it reads the same images as --labels")
    cols = [data.labels.index(lb) for lb in labels]
    votes = table.votes[:, ri][:, :, [table.labels.index(lb) for lb in labels]]
    patients = tuple(data.patients[i] for i in di)
    result = compare_readers(votes, table.readers, labels, data.probs[np.ix_(di, cols)],
                             thresholds[cols], patients, opts.panel or None,
                             opts.bootstrap, opts.seed)
    summary = result.summary
    summary["source"] = str(table.source)
    summary["readers"] = list(table.readers)
    summary["reader_images_without_predictions"] = len(table.ids) - len(ri)
    summary["evaluated_images_without_reads"] = len(data.ids) - len(di)
    if opts.panel:
        truth, _ = majority_vote(votes[[table.readers.index(p) for p in opts.panel]])
        agree = int((truth == data.y[np.ix_(di, cols)]).sum())
        summary["panel_vs_labels"] = {"agree": agree, "total": int(truth.size)}
    return result, data.probs[np.ix_(di, cols)], labels


def evaluate(opts: EvalOptions) -> EvalResult:
    """Run the whole evaluation and write its outputs into ``opts.out``."""
    truth = eval_io.load_truth(opts.labels)
    list_note = None
    if opts.images is not None:
        truth, list_note = restrict_to_list(truth, opts.images)
    boxes = eval_io.read_bboxes(opts.bbox) if opts.bbox else []
    card, run, model_info, tta, baseline = None, None, None, None, None
    if opts.model:
        from chexnet.inference.package.lookup import resolve_model
        from chexnet.inference.scoring.engine import Engine

        engine = Engine(resolve_model(opts.model), device=opts.device,
                        batch_size=opts.batch_size, tta=opts.tta)
        card = engine.card
        model_info = {"name": card.name, "version": card.version, "sha256": engine.sha256,
                      "demo": card.demo, "provider": engine.providers[0], "tta": engine.tta}
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
        preds = run.predictions
        if engine.tta != "none":  # the same images without augmentation, for the comparison
            started = time.perf_counter()
            baseline = eval_io.run_model(
                Engine(engine.path, device=opts.device, batch_size=opts.batch_size, tta="none"),
                ids, located, set(), opts.max_pixels).predictions
            tta["seconds_per_image"]["none"] = (time.perf_counter() - started) / max(1, len(ids))
        if not preds.ids:
            raise EvalInputError(opts.data or truth.source, "no image of the label file could "
                                 "be scored", "check --data and the label file's names")
    else:
        preds = eval_io.read_predictions(opts.predictions)
    task = opts.task or (card.task if card is not None else "multi-label")
    truth = truth_for_model(truth, preds.labels, task)
    data = align(preds, truth)
    if list_note:
        data.notes.insert(0, list_note)
    if run is not None:
        missing = len(truth.ids) - len(preds.ids) - len(run.unreadable) - len(run.not_analysed)
        data.dropped.update({"image_files_not_found": missing,
                             "unreadable_images": run.unreadable,
                             "not_analysed_images": run.not_analysed})
        why = [f"{n} {what}" for n, what in (
            (missing, "have no file under --data"), (len(run.unreadable), "could not be read"),
            (len(run.not_analysed), "are outside the model's intended use")) if n]
        if why:
            data.notes.append(f"of the labelled images without prediction: {'; '.join(why)}")
    thresholds, source = resolve_thresholds(opts, data.labels, card)
    result = compute_metrics(data, thresholds, opts.bootstrap, opts.seed, task=task)
    if task == "single-label":
        confusion.plot_confusion(opts.out / "confusion.png", result["confusion"])
        result["confusion"]["figure"] = "confusion.png"
    result["thresholds_source"] = source
    if tta is not None:
        if tta["mode"] != tta["thresholds_assume"]:
            data.notes.append(f"scored with test-time augmentation {tta['mode']}, but the model "
                              f"card's thresholds were chosen with {tta['thresholds_assume']}")
        if baseline is not None:
            base = align(baseline, truth)
            if base.ids != data.ids:  # both runs read the same files: a mismatch is a bug
                raise RuntimeError("the runs with and without test-time augmentation scored "
                                   "different images")
            tta["comparison"] = eval_tta.tta_comparison(
                tta["mode"], data.y, data.probs, base.probs, data.labels, data.patients,
                opts.bootstrap, opts.seed)
        result["tta"] = tta
    result["inputs"] = {"labels": str(opts.labels), "predictions": _str(opts.predictions),
                        "model": model_info, "data": _str(opts.data),
                        "readers": _str(opts.readers), "bbox": _str(opts.bbox)}
    result["dropped"] = data.dropped
    result["notes"] = data.notes
    if boxes:
        result["pointing_game"] = pointing_game(boxes, run.cams, data.labels,
                                                opts.pointing_tolerance)
    readers = reader_comparison(opts, data, thresholds) if opts.readers else None
    files = report.write_outputs(opts.out, data, result, readers)
    if tta is not None:  # report.md's own renderer knows nothing of TTA: add its section
        with open(opts.out / "report.md", "a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(eval_tta.report_lines(tta)))
    if run is not None:
        eval_io.write_predictions(opts.out / "predictions.csv", run.predictions)
        files.append(opts.out / "predictions.csv")
    return EvalResult(result, readers[0].summary if readers else None, files,
                      run.unreadable if run else [])


def _str(path) -> str | None:
    return None if path is None else str(path)
