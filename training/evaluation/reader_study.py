"""The radiologist comparison of an evaluation: the individual reads aligned with the evaluated
images and findings, then :func:`~chexnet.training.evaluation.radiologist_reads.compare_readers`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chexnet.training.evaluation.eval_set import EvalSet
from chexnet.training.evaluation.inputs import EvalInputError, match_ids
from chexnet.training.evaluation.radiologist_reads import (
    ReaderComparison,
    compare_readers,
    majority_vote,
    read_individual_readers,
)


def compare_with_readers(readers: Path, panel: tuple[str, ...], data: EvalSet,
                         thresholds: np.ndarray, n_resamples: int = 1000, seed: int = 0
                         ) -> tuple[ReaderComparison, np.ndarray, list[str]]:
    """Read ``readers`` (one row per reader per image) and compare them with the model on the
    images and findings both have; ``panel`` (reader IDs) is the truth when given, else each
    reader is scored against the others. Returns the comparison, the model's probabilities
    aligned with it, and its findings (what :func:`.outputs.write_outputs` takes)."""
    table = read_individual_readers(readers)
    unknown = [p for p in panel if p not in table.readers]
    if unknown:
        raise EvalInputError(table.source, f"--panel reader(s) {unknown} are not in it",
                             f"its readers are {', '.join(table.readers)}")
    if panel and len(set(panel)) == len(table.readers):
        raise EvalInputError(table.source, "--panel names every reader, leaving none to compare",
                             "leave at least one reader out of the panel")
    di, ri = match_ids(data.ids, table.ids)
    labels = [lb for lb in data.labels if lb in table.labels]
    if len(di) == 0 or not labels:
        raise EvalInputError(table.source, "no evaluated image or finding is in it",
                             "check that it reads the same images as --labels")
    cols = [data.labels.index(lb) for lb in labels]
    votes = table.votes[:, ri][:, :, [table.labels.index(lb) for lb in labels]]
    patients = tuple(data.patients[i] for i in di)
    result = compare_readers(votes, table.readers, labels, data.probs[np.ix_(di, cols)],
                             thresholds[cols], patients, panel or None,
                             n_resamples, seed)
    summary = result.summary
    summary["source"] = str(table.source)
    summary["readers"] = list(table.readers)
    summary["reader_images_without_predictions"] = len(table.ids) - len(ri)
    summary["evaluated_images_without_reads"] = len(data.ids) - len(di)
    if panel:
        truth, _ = majority_vote(votes[[table.readers.index(p) for p in panel]])
        agree = int((truth == data.y[np.ix_(di, cols)]).sum())
        summary["panel_vs_labels"] = {"agree": agree, "total": int(truth.size)}
    return result, data.probs[np.ix_(di, cols)], labels
