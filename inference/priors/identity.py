"""Whose study a file is, and when: what prior matching needs, read once, kept in memory only.

A :class:`StudyIdentity` holds a Patient ID: it is never logged, never put in an error or an
output (outputs carry a salted key instead: :mod:`.keys`). DICOM files give it from their header
(read up to the pixel data, inside the per-file guard); PNG/JPEG files from a labels CSV
(:class:`~.patients.PatientTable`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from pydicom.dataset import Dataset

from chexnet.inference.io.image_file import ImageFile, open_image_file
from chexnet.inference.io.warning_guard import guarded_warnings
from chexnet.inference.priors.patients import PatientTable, find_patient_file

__all__ = ["PatientTable", "StudyIdentity", "find_patient_file", "identity_from_dataset",
           "identity_from_table", "identity_of_file", "read_identity"]


@dataclass(frozen=True)
class StudyIdentity:
    """Patient, issuer, time and study of one file. In memory only (PHI): the repr shows none
    of it."""

    patient: str | None = field(repr=False)
    issuer: str = field(default="", repr=False)
    when: datetime | None = field(default=None, repr=False)
    order: int | None = field(default=None, repr=False)
    study_uid: str | None = field(default=None, repr=False)

    @property
    def placed(self) -> bool:
        """Whether the study can be put on a timeline (it has a date or a follow-up number)."""
        return self.when is not None or self.order is not None

    @property
    def patient_key(self) -> tuple[str, str] | None:
        """(issuer, patient): one patient; ``None`` without a Patient ID."""
        return None if not self.patient else (self.issuer, self.patient)


def read_identity(path: Path, patients: PatientTable | None = None) -> StudyIdentity:
    """A file's identity: a DICOM's from its header (parsed up to the pixel data, inside the
    per-file guard: a bad file raises a named, PHI-free error), a PNG/JPEG's from ``patients``
    (no table, or a file it does not name: no patient)."""
    return identity_of_file(open_image_file(Path(path)), patients)


def identity_of_file(opened: ImageFile, patients: PatientTable | None = None) -> StudyIdentity:
    """The identity of a file already opened (its header parsed once, e.g. by ``scan()``)."""
    if opened.dicom is not None:
        return identity_from_dataset(opened.dicom.dataset)
    return identity_from_table(opened.path, patients)


def identity_from_table(path: Path, patients: PatientTable | None) -> StudyIdentity:
    """A PNG/JPEG file's identity: its row of ``patients`` (none: no patient)."""
    entry = patients.lookup(path) if patients is not None else None
    if entry is None:
        return StudyIdentity(patient=None)
    return StudyIdentity(patient=entry.patient, when=entry.when, order=entry.order)


def identity_from_dataset(ds: Dataset) -> StudyIdentity:
    """Patient ID, Issuer of Patient ID, Study Date (+ Time) and Study Instance UID of a
    header. Values that are missing or malformed are ``None`` (an unreadable date: no date).
    pydicom's validation warnings, which quote the value (a Patient ID), are swallowed (its log
    records are dropped by :mod:`chexnet.inference.io.file_guard`'s handler)."""
    with guarded_warnings(record=True) as caught:
        warnings.simplefilter("always")
        identity = StudyIdentity(patient=_text(ds, "PatientID"),
                                 issuer=_text(ds, "IssuerOfPatientID") or "",
                                 when=_study_datetime(ds), order=None,
                                 study_uid=_text(ds, "StudyInstanceUID"))
    caught.clear()
    return identity


def _text(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:  # a value pydicom cannot convert is no identity
        return None
    text = "" if value is None else str(value).strip()
    return text or None


def _study_datetime(ds: Dataset) -> datetime | None:
    day = _parse(_text(ds, "StudyDate"), _da)
    if day is None:
        return None
    at = _parse(_text(ds, "StudyTime"), _tm) or time()
    return datetime.combine(day, at)


def _parse(text: str | None, parser):
    if not text:
        return None
    try:
        return parser(text)
    except (ValueError, TypeError, OverflowError):
        return None


#: Study years outside this range are placeholders ("99991231", "00010101"), not dates: taken
#: as no date, they neither top a timeline nor overflow the output folder's date shift.
STUDY_YEARS = range(1900, 2200)


def _da(text: str) -> date:
    day = datetime.strptime(text[:8], "%Y%m%d").date()
    if day.year not in STUDY_YEARS:
        raise ValueError("a placeholder date")
    return day


def _tm(text: str) -> time:
    """DICOM TM: HH, HHMM, HHMMSS, HHMMSS.FFFFFF (the old HH:MM:SS too)."""
    text = text.replace(":", "")
    whole, _, frac = text.partition(".")
    if len(whole) not in (2, 4, 6) or not whole.isdigit():
        raise ValueError("not a DICOM time")
    parts = [int(whole[i:i + 2]) for i in range(0, len(whole), 2)] + [0, 0]
    micro = int((frac + "000000")[:6]) if frac.isdigit() else 0
    return time(parts[0], parts[1], min(parts[2], 59), micro)
