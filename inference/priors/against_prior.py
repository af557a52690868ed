"""``chexnet predict FILE --prior FILE2``: score the prior with the same engine, compare, say it.

The prior is a file or a folder (a study: its image read first, as ``predict`` orders them).
The comparison is :func:`~.compare.compare_predictions` of the two predictions, so its deltas are
exactly the difference of two ``chexnet predict`` runs. What the headers say is checked: a prior
of another patient (Patient ID or issuer), or one not earlier, is said in a warning that quotes
neither IDs nor dates; the prior's date is shown only with ``--include-phi`` (else the interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.io.image_file import ImageFile
from chexnet.inference.io.study import Instance, scan
from chexnet.inference.priors.compare import (
    Comparison,
    NotComparableError,
    card_thresholds,
    compare_predictions,
)
from chexnet.inference.priors.identity import StudyIdentity, identity_of_file
from chexnet.inference.priors.timeline import when_text
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.file_input import ERROR, read_input
from chexnet.inference.scoring.prediction import Prediction


@dataclass(frozen=True)
class PriorComparison:
    prior: Prediction | None
    comparison: Comparison | None
    problem: str = ""  # why there is no comparison (PHI-free)
    warnings: tuple[str, ...] = ()
    interval_days: int | None = None
    prior_date: str = ""  # shown with --include-phi only
    unreadable: bool = False  # the prior could not be read (not: read, but not comparable)

    def to_dict(self, include_phi: bool = False) -> dict:
        doc = {"prior": None if self.prior is None else str(self.prior.path),
               "problem": self.problem or None, "warnings": list(self.warnings),
               "interval_days": self.interval_days}
        if include_phi:
            doc["prior_date"] = self.prior_date or None
        if self.comparison is not None:
            doc.update(self.comparison.to_dict())
        return doc


def compare_with_prior(engine: Engine, current: Prediction, prior_path: Path, *,
                       max_pixels: int, current_file: ImageFile | None = None) -> PriorComparison:
    """Score ``prior_path`` (its first image to read) and compare ``current`` with it.
    ``current_file``: the current image as opened for scoring (its header parsed once: its
    identity, for the checks, is read from it; None: no identity checks)."""
    if not Path(prior_path).exists():
        return PriorComparison(None, None, f"{prior_path}: no such file or folder (check the "
                                           "path given with --prior)", unreadable=True)
    found = scan([prior_path])
    instances = [inst for study in found.studies for inst in study.instances]
    if not instances:
        why = found.skipped[0] if found.skipped else None
        return PriorComparison(None, None, str(why) if why else f"{prior_path}: no image found",
                               unreadable=True)
    inst = instances[0]
    read = read_input(inst, engine.card.preprocess, tta=engine.tta, max_pixels=max_pixels)
    if read.kind == ERROR:
        return PriorComparison(None, None, str(read.error), unreadable=True)
    if read.prepared is None:
        return PriorComparison(None, None, f"{inst.path}: not analysed: "
                                           + "; ".join(read.reasons))
    prior = engine.score([read.prepared])[0]
    warnings, interval, date = _identity_checks(current_file, inst)
    try:
        cmp = compare_predictions(current, prior, card_thresholds(engine.card))
    except NotComparableError as err:
        return PriorComparison(prior, None, str(err), warnings, interval, date)
    return PriorComparison(prior, cmp, "", warnings, interval, date)


def _identity_checks(current: ImageFile | None, prior_inst
                     ) -> tuple[tuple[str, ...], int | None, str]:
    try:
        now = _identity(current)
        before = _identity(prior_inst)
    except ChexnetInputError:
        return (), None, ""
    warnings = []
    if now.patient_key and before.patient_key and now.patient_key != before.patient_key:
        warnings.append("the prior's Patient ID or Issuer of Patient ID differs from the "
                        "current image's: it may be another patient")
    if now.study_uid and now.study_uid == before.study_uid:
        warnings.append("the prior is of the same study as the current image (Study Instance "
                        "UID): it is no earlier study; give the earlier study's file")
    elif now.when and before.when and before.when >= now.when:
        warnings.append("the prior's Study Date is not earlier than the current image's")
    interval = (now.when.date() - before.when.date()).days if now.when and before.when else None
    return tuple(warnings), interval, when_text(before)


def _identity(opened: ImageFile | Instance | None) -> StudyIdentity:
    opened = opened.file if isinstance(opened, Instance) else opened
    if opened is None:
        return StudyIdentity(patient=None)
    return identity_of_file(opened)


def interval_text(days: int) -> str:
    """"491 days earlier", "the same day", "30 days later" (a prior that is not earlier)."""
    if days == 0:
        return "the same day"
    return f"{abs(days)} day{'s' * (abs(days) != 1)} {'earlier' if days > 0 else 'later'}"


def comparison_lines(result: PriorComparison, include_phi: bool = False) -> list[str]:
    """The comparison table: label, now, before, change (arrow), new/resolved."""
    head = f"compared with prior {result.prior.path}" if result.prior is not None \
        else "compared with prior"
    when = [interval_text(result.interval_days)] if result.interval_days is not None else []
    if include_phi and result.prior_date:
        when.insert(0, result.prior_date)
    lines = [head + (f" ({', '.join(when)})" if when else "")]
    lines += [f"  warning: {w}" for w in result.warnings]
    if result.comparison is None:
        return [*lines, f"  no comparison: {result.problem}"]
    rows = result.comparison.rows
    width = max([20, *(len(r.label) + 2 for r in rows)])
    lines.append(f"  {'finding':<{width}}{'now':>8}{'before':>8}{'change':>10}")
    for r in rows:
        lines.append(f"  {r.label:<{width}}{r.now:>8.3f}{r.before:>8.3f}"
                     f"{r.arrow:>3} {r.delta:+.3f}" + (f"  {r.status.upper()}" if r.status else ""))
    lines.append(f"  new: {', '.join(result.comparison.new) or 'none'}; "
                 f"resolved: {', '.join(result.comparison.resolved) or 'none'}")
    return lines
