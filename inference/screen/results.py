"""Screening results: one :class:`ScreenRow` per input file, the worklist order, ``results.csv``.

Rows are built from journal records (see :mod:`~chexnet.inference.screen.journal`), never
from in-memory state, so a resumed run and an uninterrupted one produce the same bytes. Order of
the worklist:

1. analysed images by priority, highest first. ``max-above-threshold`` (default): images with
   at least one finding at or above its operating point first, by the highest such
   probability; then the others, by abnormal score (the highest finding probability).
   ``abnormal``: by abnormal score. A finding name: by that finding's probability.
2. then images not analysed (outside the intended use: they still need a human read),
3. then unreadable files (``error``), 4. then duplicates; each group by path.

``new``: analysed images with a finding new since the patient's prior
(:mod:`.prior_columns`) first, then as ``max-above-threshold``.

Ties are broken by path, so the order is total and deterministic.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from chexnet.inference.io.uids import DicomUids
from chexnet.inference.package.card import is_normal_label
from chexnet.inference.screen.prior_columns import PRIOR_ROLE, PriorInfo, prior_infos
from chexnet.inference.status import SCREEN_STATUSES, Status

STATUSES = SCREEN_STATUSES  # the worklist filter offers these
PRIORITY_MODES = ("max-above-threshold", "abnormal", "new")
PHI_COLUMNS = (("PatientName", "patient_name"), ("PatientID", "patient_id"),
               ("PatientBirthDate", "patient_birth_date"))
_GROUP = {status: i for i, status in enumerate(SCREEN_STATUSES)}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RunModel:
    """The model a journal was written with (its header): what every row is scored by."""

    name: str
    version: str
    sha256: str
    demo: bool
    labels: tuple[str, ...]
    thresholds: tuple[float, ...]

    @classmethod
    def from_header(cls, header: dict) -> RunModel:
        m = header["model"]
        return cls(m["name"], m["version"], m["sha256"], bool(m["demo"]),
                   tuple(header["labels"]), tuple(float(t) for t in header["thresholds"]))


@dataclass(frozen=True)
class ScreenRow:
    """One input file's result: the CSV fields plus the report's image files.

    ``rank`` (worklist position, 1 = read first) is known only once the whole worklist is
    sorted; rows handed out while a run is going have ``rank=None``.
    """

    path: str
    status: str
    reason: str
    warnings: tuple[str, ...]
    uids: DicomUids
    sha256: str | None
    probabilities: dict[str, float] | None
    abnormal_score: float | None
    findings_above_threshold: tuple[str, ...]
    priority: float | None
    priority_group: int
    duplicate_of: str | None
    model_name: str
    model_version: str
    model_sha256: str
    thumb_path: Path | None = None
    cam_path: Path | None = None
    cam_finding: str | None = None
    phi: dict[str, str] | None = None
    rank: int | None = None
    #: The model's out-of-distribution score (None: not scored, or no such check in the model).
    ood_score: float | None = None
    #: The prior columns (:mod:`.prior_columns`); None: not computed (rows handed out while a
    #: run is going, folders screened before prior matching).
    prior: PriorInfo | None = None

    def sort_key(self) -> tuple:
        return (self.priority_group, -(self.priority if self.priority is not None else 0.0),
                self.path)

    def new_first_key(self) -> tuple:
        """``--priority new``: images with a new finding first, then :meth:`sort_key`."""
        return (not (self.prior and self.prior.new), *self.sort_key())


def validate_priority(mode: str, labels: Sequence[str]) -> str:
    if mode in PRIORITY_MODES or mode in labels:
        return mode
    raise ValueError(f"--priority {mode!r}: use max-above-threshold, abnormal or one of the "
                     f"model's findings: {', '.join(labels)}")


def priority_of(probs: Sequence[float], thresholds: Sequence[float], labels: Sequence[str],
                mode: str) -> tuple[int, float]:
    """(group, score) of an analysed image; group 0 sorts before group 1 (see module doc).
    A "normal" / "No Finding" output is no finding: it never raises an image's priority."""
    abnormal = abnormal_score(probs, labels)
    if mode == "abnormal":
        return 0, abnormal
    if mode in labels:
        return 0, probs[labels.index(mode)]
    above = [p for p, t, label in zip(probs, thresholds, labels, strict=True)
             if p >= t and not is_normal_label(label)]
    return (0, max(above)) if above else (1, abnormal)


def abnormal_score(probs: Sequence[float], labels: Sequence[str]) -> float:
    """The highest finding probability ("normal" / "No Finding" outputs left out)."""
    return max((p for p, label in zip(probs, labels, strict=True) if not is_normal_label(label)),
               default=0.0)


def row_from_record(record: dict, model: RunModel, mode: str, out_dir: Path,
                    prior: PriorInfo | None = None) -> ScreenRow:
    probs = record.get("probabilities")
    status = Status(record["status"])
    prob_map = abnormal = priority = None
    above: tuple[str, ...] = ()
    group = 1 + _GROUP[status]  # 0/1 belong to analysed images
    if status is Status.OK and probs is not None:
        prob_map = dict(zip(model.labels, probs, strict=True))
        abnormal = abnormal_score(probs, model.labels)
        sub, priority = priority_of(probs, model.thresholds, model.labels, mode)
        group = sub
        order = sorted(range(len(probs)), key=lambda i: -probs[i])
        above = tuple(model.labels[i] for i in order if probs[i] >= model.thresholds[i]
                      and not is_normal_label(model.labels[i]))
    return ScreenRow(
        path=record["path"], status=status, reason=record.get("reason") or "",
        warnings=tuple(record.get("warnings") or ()), uids=DicomUids.from_record(record),
        sha256=record.get("sha256"), probabilities=prob_map, abnormal_score=abnormal,
        findings_above_threshold=above, priority=priority, priority_group=group,
        duplicate_of=record.get("duplicate_of"), model_name=model.name,
        model_version=model.version, model_sha256=model.sha256,
        thumb_path=out_dir / record["thumb"] if record.get("thumb") else None,
        cam_path=out_dir / record["cam"] if record.get("cam") else None,
        cam_finding=record.get("cam_finding"), phi=record.get("phi"),
        ood_score=record.get("ood_score"), prior=prior)


def worklist(records: Iterable[dict], model: RunModel, mode: str, out_dir: Path) -> list[ScreenRow]:
    """Rows in worklist order, ranked from 1, with their prior columns (files given with
    ``--priors`` are candidates, not rows)."""
    records = list(records)
    priors = prior_infos(records, model.labels, model.thresholds, out_dir)
    rows = sorted((row_from_record(r, model, mode, out_dir, priors.get(r["path"]))
                   for r in records if r.get("role") != PRIOR_ROLE),
                  key=ScreenRow.new_first_key if mode == "new" else ScreenRow.sort_key)
    return [replace(r, rank=i) for i, r in enumerate(rows, 1)]


def csv_columns(labels: Sequence[str], include_phi: bool) -> list[str]:
    phi = [col for _key, col in PHI_COLUMNS] if include_phi else []
    return ["rank", "path", "status", "reason", "warnings", "study_uid", "series_uid",
            "sop_instance_uid", *phi, *labels, "abnormal_score", "findings_above_threshold",
            "priority", "ood_score", "duplicate_of", "sha256", "model_name", "model_version",
            "model_sha256", *prior_columns(labels, include_phi)]


def prior_columns(labels: Sequence[str], include_phi: bool) -> list[str]:
    """The comparison with priors (README "Comparing with priors"); the prior's date only with
    --include-phi (docs/decisions.md)."""
    return ["patient_key", "prior_path", *(["prior_date"] if include_phi else []),
            "prior_interval_days", "prior_reason", "new_findings", "resolved_findings",
            *(f"delta_{lb}" for lb in labels if not is_normal_label(lb))]


def _prior_cells(p: PriorInfo | None, findings: Sequence[str], include_phi: bool) -> list[str]:
    """``findings``: the labels that are findings (no "normal" output), in column order."""
    if p is None:
        return [""] * (6 + include_phi + len(findings))
    deltas = p.deltas or {}
    return [p.patient_key, _cell(p.path), *([_cell(p.date)] if include_phi else []),
            "" if p.interval_days is None else str(p.interval_days), _cell(p.reason),
            _cell(";".join(p.new)), _cell(";".join(p.resolved)),
            *(_signed(deltas.get(lb)) for lb in findings)]


def csv_text(rows: Sequence[ScreenRow], labels: Sequence[str], include_phi: bool) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_cell(c) for c in csv_columns(labels, include_phi)])  # labels: a card's
    findings = [lb for lb in labels if not is_normal_label(lb)]
    for r in rows:
        phi = ([_cell((r.phi or {}).get(key, "")) for key, _col in PHI_COLUMNS]
               if include_phi else [])
        probs = [_num(r.probabilities[lb]) if r.probabilities else "" for lb in labels]
        writer.writerow([
            r.rank, _cell(r.path), r.status, _cell(r.reason), _cell(" | ".join(r.warnings)),
            # UIDs come from the file: a hostile one can hold "=HYPERLINK(...)" like any text
            _cell(r.uids.study or ""), _cell(r.uids.series or ""),
            _cell(r.uids.sop_instance or ""), *phi, *probs,
            _num(r.abnormal_score), _cell(";".join(r.findings_above_threshold)),
            _num(r.priority), "" if r.ood_score is None else f"{r.ood_score:.4f}",
            _cell(r.duplicate_of or ""), r.sha256 or "", _cell(r.model_name),
            _cell(r.model_version), r.model_sha256,
            *_prior_cells(r.prior, findings, include_phi)])
    return buf.getvalue()


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def _cell(text: str) -> str:
    """Text from files, made inert for spreadsheets (a leading = + - @ starts a formula)."""
    return "'" + text if text.startswith(_FORMULA_START) else text
