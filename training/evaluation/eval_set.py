"""The evaluated set: predictions and truth joined image by image and label by label.

Nothing is dropped silently: images or labels present on one side only are counted, named in
the notes that reach the report, and left out of the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.package.card import label_key
from chexnet.training.data.labels import LabelTable
from chexnet.training.evaluation.inputs import EvalInputError, PredictionTable, match_ids


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


def _examples(names, n: int = 5) -> list[str]:
    return [str(x) for x in list(names)[:n]]


def align(preds: PredictionTable, truth: LabelTable) -> EvalSet:
    """The images and labels present on both sides, with what was left out, and why."""
    pi, ti = match_ids(preds.ids, truth.ids)
    # labels match in any case and with spaces, "_" or "-"; they are named as the model names
    # them, in the label file's order
    predicted = {label_key(lb): lb for lb in preds.labels}
    truth_cols = [lb for lb in truth.labels if label_key(lb) in predicted]
    common = [predicted[label_key(lb)] for lb in truth_cols]
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
        "label_columns_without_predictions": [lb for lb in truth.labels
                                              if lb not in truth_cols],
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
    y = truth.y[ti][:, [truth.labels.index(lb) for lb in truth_cols]]
    probs = preds.probs[pi][:, [preds.labels.index(lb) for lb in common]]
    uncertain = {lb: int((y[:, j] < 0).sum()) for j, lb in enumerate(common) if (y[:, j] < 0).any()}
    if uncertain:  # -1 (labels-from-reports --auto): neither positive nor negative
        dropped["uncertain_left_out"] = uncertain
        notes.append(f"{sum(uncertain.values())} uncertain (-1) label value(s) left out of their "
                     "finding's AUROC, operating point and threshold: "
                     + ", ".join(f"{lb} {n}" for lb, n in uncertain.items()))
    return EvalSet(tuple(truth.ids[i] for i in ti), tuple(truth.patients[i] for i in ti),
                   tuple(common), y, probs, notes, dropped)
