"""Studies -> patients' timelines -> a study's priors.

A prior is an earlier study of the same patient: same Patient ID *and* same Issuer of Patient ID
(the same ID from another issuer is another patient), strictly earlier by Study Date/Time (PNG
datasets: a lower follow-up number, or an earlier study date from the labels CSV). A study
without a date (or follow-up number) can be neither placed nor used. Several files of one study
are one study, represented by the image ``scan()`` reads first (:attr:`io.study.Study.primary`);
PNG/JPEG files are a study each. Reasons are PHI-free: they never quote an ID or a date.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.inference.io.study import Study, scan
from chexnet.inference.priors.identity import (
    PatientTable,
    StudyIdentity,
    identity_of_file,
    read_identity,
)

NO_PATIENT = "no Patient ID"
NO_PATIENT_RASTER = "no Patient ID (no labels CSV names this PNG/JPEG file)"
NO_DATE = "no Study Date"
NO_EARLIER = "no earlier study of this patient"
OTHER_ISSUER = ("other issuer (earlier studies with this Patient ID come from another Issuer of "
                "Patient ID: a different patient)")
NOT_READ = "not a readable image among the files searched"


@dataclass(frozen=True)
class PriorMatch:
    path: Path
    when_text: str  # "2019-03-04" or "follow-up 3": shown in the viewer; outputs: see docs
    identity: StudyIdentity = field(repr=False)


@dataclass(frozen=True)
class PriorSearch:
    current: Path
    priors: tuple[PriorMatch, ...]  # most recent first
    reason: str | None  # why none (PHI-free); None when there are priors
    identity: StudyIdentity | None = field(default=None, repr=False)  # the current study's

    @property
    def latest(self) -> PriorMatch | None:
        return self.priors[0] if self.priors else None

    def interval_days(self, prior: PriorMatch | None = None) -> int | None:
        """Days from ``prior`` (default: the latest) to the current study; ``None`` when either
        has no date (follow-up numbers are not days)."""
        prior = prior or self.latest
        if prior is None or self.identity is None or self.identity.when is None \
                or prior.identity.when is None:
            return None
        return (self.identity.when.date() - prior.identity.when.date()).days


def when_text(identity: StudyIdentity) -> str:
    if identity.when is not None:
        return identity.when.date().isoformat()
    return f"follow-up {identity.order}" if identity.order is not None else ""


def _key(path: str | Path) -> str:
    """The lookup key of a path: absolute paths as given (a journal's already are: abspath on
    10,000 of them cost 0.1 s), relative ones made absolute."""
    text = os.fspath(path)
    return text if os.path.isabs(text) else os.path.abspath(text)


def _sort_key(identity: StudyIdentity) -> tuple:
    return (identity.when.timestamp() if identity.when else float("-inf"), identity.order or 0)


def _earlier(a: StudyIdentity, current: StudyIdentity) -> bool:
    if current.when is not None:
        return a.when is not None and a.when < current.when
    return current.order is not None and a.order is not None and a.when is None \
        and a.order < current.order


def _same_study(a: StudyIdentity, b: StudyIdentity) -> bool:
    return a.study_uid is not None and a.study_uid == b.study_uid


class Timelines:
    """Every study of a set of files, by patient; :meth:`search` finds one file's priors.
    Built once (headers read once, by ``scan()``), then each search looks at one patient's
    studies only. Holds patient IDs in memory: never log it."""

    def __init__(self, studies: Iterable[tuple[Path, StudyIdentity, Iterable[Path]]]) -> None:
        self._study_of: dict[str, tuple[Path, StudyIdentity]] = {}
        self._by_patient: dict[tuple[str, str], list[tuple[Path, StudyIdentity]]] = \
            defaultdict(list)
        self._issuers: dict[str, set[str]] = defaultdict(set)
        parts: dict[str, tuple[Path, StudyIdentity]] = {}  # study UID -> its first part
        for rep, ident, members in studies:
            first = parts.get(ident.study_uid) if ident.study_uid is not None else None
            if first is not None:  # one study scanned in two parts (the open, a worklist)
                for member in (rep, *members):
                    self._study_of[_key(member)] = first
                continue
            if ident.study_uid is not None:
                parts[ident.study_uid] = (rep, ident)
            for member in (rep, *members):
                self._study_of[_key(member)] = (rep, ident)
            if ident.patient_key is not None and ident.placed:
                self._by_patient[ident.patient_key].append((rep, ident))
                self._issuers[ident.patient].add(ident.issuer)
        for timeline in self._by_patient.values():
            timeline.sort(key=lambda item: _sort_key(item[1]), reverse=True)

    def __repr__(self) -> str:  # no patient data
        return f"Timelines({len(self._by_patient)} patients)"

    @classmethod
    def from_identities(cls, items: Iterable[tuple[Path, StudyIdentity]]) -> Timelines:
        """One study per (representative path, identity)."""
        return cls((path, ident, ()) for path, ident in items)

    @classmethod
    def from_studies(cls, studies: Iterable[Study],
                     patients: PatientTable | None = None) -> Timelines:
        """From ``scan()``'s studies, their headers already parsed (nothing is read again).
        PNG/JPEG files without ``patients`` use the labels CSV found beside or above their
        folder (:meth:`PatientTable.find`), if any."""
        tables: dict[Path, PatientTable | None] = {}

        def table_for(path: Path) -> PatientTable | None:
            if patients is not None:
                return patients
            if path.parent not in tables:
                tables[path.parent] = PatientTable.find(path.parent)
            return tables[path.parent]

        def items():
            for study in studies:
                instances = study.instances
                if instances and instances[0].kind == "dicom":
                    rep = study.primary
                    ident = identity_of_file(rep.file) if rep.file is not None \
                        else read_identity(rep.path)
                    yield rep.path, ident, [i.path for i in instances]
                    continue
                for inst in instances:  # PNG/JPEG: a study each
                    table = table_for(inst.path)
                    ident = identity_of_file(inst.file, table) if inst.file is not None \
                        else read_identity(inst.path, table)
                    yield inst.path, ident, ()

        return cls(items())

    @classmethod
    def build(cls, paths: Iterable[str | Path],
              patients: PatientTable | None = None) -> Timelines:
        """Files and folders -> timelines (headers only, via ``scan()``; unreadable files are
        left out, as ``scan()`` leaves them)."""
        return cls.from_studies(scan(paths).studies, patients)

    def search(self, path: str | Path) -> PriorSearch:
        path = Path(path)
        found = self._study_of.get(_key(path))
        if found is None:
            return PriorSearch(path, (), NOT_READ)
        rep, ident = found
        if not ident.patient:
            raster = ident.study_uid is None and ident.when is None and ident.order is None
            return PriorSearch(path, (), NO_PATIENT_RASTER if raster and rep.suffix.lower()
                               in (".png", ".jpg", ".jpeg") else NO_PATIENT, ident)
        if not ident.placed:
            return PriorSearch(path, (), NO_DATE, ident)
        priors = tuple(PriorMatch(p, when_text(other), other)
                       for p, other in self._by_patient.get(ident.patient_key, ())
                       if other is not ident and not _same_study(other, ident)
                       and _earlier(other, ident))
        if priors:
            return PriorSearch(path, priors, None, ident)
        other_issuers = self._issuers.get(ident.patient, set()) - {ident.issuer}
        if any(_earlier(other, ident) for issuer in other_issuers
               for _p, other in self._by_patient.get((issuer, ident.patient), ())):
            return PriorSearch(path, (), OTHER_ISSUER, ident)
        return PriorSearch(path, (), NO_EARLIER, ident)


def find_priors(current: Path, candidates: Iterable[Path],
                patients: PatientTable | None = None) -> PriorSearch:
    """The priors of ``current`` among ``candidates`` (files or folders)."""
    return Timelines.build([current, *candidates], patients).search(current)
