"""``labels-from-reports --auto``: reports -> labels.csv in one step, by mention-level assertion
(:mod:`.assertion`), plus ``unmatched_clauses.csv``, the clusters of sentences the vocabulary did
not cover (the paper's Table I, as a tool to find a hospital's own words for ``--vocabulary``).

labels.csv: ``path`` (relative to labels.csv), ``patient_id`` when the reports have one, then one
column per vocabulary label (the 14 ChestX-ray14 findings, ``normal``, and any label the
vocabulary file adds) holding 1 present, 0 absent or not named, -1 uncertain (``--uncertain
as-positive`` writes 1 instead, ``as-negative`` 0). A report that names nothing the vocabulary
knows goes to unlabelled.csv: unknown, not normal.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chexnet.training.reports.assertion import UNCERTAIN, label_report
from chexnet.training.reports.clauses import remove_digits
from chexnet.training.reports.findings import Vocabulary
from chexnet.training.reports.label_map import LabelledImages, image_path, write_labels
from chexnet.training.reports.report_files import ReportTable, index_dicoms_by_uid

UNCERTAIN_MODES = ("keep", "as-positive", "as-negative")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
N_EXAMPLES = 5


def safe_cell(text: str) -> str:
    """Report text made inert for spreadsheets (a leading = + - @ starts a formula)."""
    return "'" + text if text.startswith(FORMULA_START) else text


@dataclass(frozen=True)
class AutoLabels:
    """labels.csv's content, and what the vocabulary did not cover."""

    images: LabelledImages
    unmatched: dict[str, list[int]]  # sentence (digits removed) -> report rows it occurs in
    uncertain: int  # label values that were -1 before --uncertain


def auto_label(reports: ReportTable, vocab: Vocabulary, out: Path, uncertain: str = "keep",
               images: Path | None = None) -> AutoLabels:
    """Label every report (rules: module doc)."""
    if uncertain not in UNCERTAIN_MODES:
        raise ValueError(f"--uncertain {uncertain}: choose one of {', '.join(UNCERTAIN_MODES)}")
    uid_paths = index_dicoms_by_uid(images) if reports.ref_kind == "uid" else None
    labels = tuple(vocab.labels)
    paths, patients, rows, unlabelled = [], [], [], []
    unmatched: dict[str, list[int]] = {}
    n_uncertain = 0
    for row, (ref, text, patient) in enumerate(zip(reports.refs, reports.texts,
                                                   reports.patients, strict=True)):
        result = label_report(text, vocab)
        for sentence in result.unmatched:
            key = " ".join(remove_digits(sentence).split())
            if key:
                unmatched.setdefault(key, []).append(row)
        image = image_path(reports, ref, out, uid_paths)
        if image is None:
            unlabelled.append((ref, "no DICOM with this SOP Instance UID in --images"))
            continue
        if not result.matched:
            unlabelled.append((image, "empty report" if not text.strip() else
                               "names nothing the vocabulary knows (see unmatched_clauses.csv)"))
            continue
        y = np.array([result.values[lb] for lb in labels], dtype=np.int8)
        n_uncertain += int((y == UNCERTAIN).sum())
        if uncertain != "keep":
            y[y == UNCERTAIN] = 1 if uncertain == "as-positive" else 0
        paths.append(image)
        patients.append(patient or image)
        rows.append(y)
    y = np.stack(rows) if rows else np.zeros((0, len(labels)), dtype=np.int8)
    result = LabelledImages(tuple(paths), tuple(patients), labels, y, tuple(unlabelled), 0, 0)
    return AutoLabels(result, unmatched, n_uncertain)


def unmatched_k(n: int) -> int:
    """Clusters for n distinct unmatched sentences: about sqrt(n / 2), 2..60 (a fixed rule: the
    silhouette has no maximum on free text, so searching k buys nothing here)."""
    return int(min(60, max(2, round((n / 2) ** 0.5)), n - 1))


def write_auto(result: AutoLabels, out: Path, with_patients: bool, seed: int = 0
               ) -> dict[str, Path]:
    """labels.csv and unlabelled.csv (as step 2 writes them), and unmatched_clauses.csv."""
    written = write_labels(result.images, out, with_patients)
    path = out / "unmatched_clauses.csv"
    texts = sorted(result.unmatched, key=lambda t: (-len(result.unmatched[t]), t))
    counts = [len(result.unmatched[t]) for t in texts]
    groups: list[list[int]] = [[i] for i in range(len(texts))]
    if len(texts) >= 3:
        # rapidfuzz and kmedoids (the train extra) load only when there is something to cluster
        from chexnet.training.reports.cluster import cluster_clauses

        c = cluster_clauses(texts, counts, k=unmatched_k(len(texts)), seed=seed)
        groups = [list(np.flatnonzero(c.labels == j)) for j in range(c.k)]
        medoids = [int(m) for m in c.medoids]
    else:
        medoids = list(range(len(texts)))
    table = []
    for members, medoid in zip(groups, medoids, strict=True):
        members.sort(key=lambda i: (-counts[i], texts[i]))
        reports = {r for i in members for r in result.unmatched[texts[i]]}
        table.append((len(reports), sum(counts[i] for i in members), len(members),
                      texts[medoid], [texts[i] for i in members[:N_EXAMPLES]]))
    table.sort(key=lambda r: (-r[0], r[3]))
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["cluster", "reports", "occurrences", "distinct_sentences", "medoid",
                    "examples"])
        for j, (n_reports, occurrences, distinct, medoid, examples) in enumerate(table):
            w.writerow([j, n_reports, occurrences, distinct, safe_cell(medoid),
                        safe_cell(" | ".join(examples))])
    return {**written, "unmatched_clauses.csv": path}


def value_counts(result: AutoLabels) -> list[tuple[str, int, int, int]]:
    """(label, present, uncertain, absent) per label of labels.csv."""
    y = result.images.y
    return [(lb, int((y[:, j] == 1).sum()), int((y[:, j] == -1).sum()),
             int((y[:, j] == 0).sum())) for j, lb in enumerate(result.images.labels)]

