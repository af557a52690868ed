"""What a search asks and what it answers, the same for C-FIND and QIDO-RS: the query keys as a
DICOM identifier, the answers as :class:`StudyMatch` / :class:`SeriesMatch`.

Patient name and ID are carried for display only: they are excluded from ``repr`` (so a
logged or printed match shows none) and nothing in chexnet logs them. Which series are read
first: the model-readable ones (CR/DX), frontal views (PA/AP) before the others when the
series-level answer says which view it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from chexnet.inference.pacs.node import READABLE_MODALITIES

FRONTAL_VIEWS = ("PA", "AP")
_DATE = r"(\d{8})?"


@dataclass(frozen=True)
class StudyQuery:
    """What to search for (empty: any). ``date_from``/``date_to``: YYYYMMDD."""

    patient_id: str = ""
    patient_name: str = ""
    accession: str = ""
    date_from: str = ""
    date_to: str = ""
    modalities: tuple[str, ...] = READABLE_MODALITIES

    @property
    def date_range(self) -> str:
        """The DICOM range form: ``FROM-TO``, ``FROM-``, ``-TO`` or one date."""
        if self.date_from and self.date_from == self.date_to:
            return self.date_from
        if not (self.date_from or self.date_to):
            return ""
        return f"{self.date_from}-{self.date_to}"


def parse_date_range(text: str) -> tuple[str, str]:
    """``20240101-20240131``, ``20240101-``, ``-20240131`` or ``20240101`` (dashes inside dates
    as in 2024-01-01 are allowed) -> (from, to); ValueError otherwise."""
    text = text.strip()
    compact = re.sub(r"(\d{4})-(\d{2})-(\d{2})", r"\1\2\3", text)
    m = re.fullmatch(rf"{_DATE}(-?){_DATE}", compact)
    if not m or not (m.group(1) or m.group(3)) or (m.group(3) and not m.group(2)):
        raise ValueError(f"{text!r}: expected a date or a range, e.g. 20240101-20240131, "
                         "20240101- or -20240131")
    start, dash, end = m.group(1) or "", m.group(2), m.group(3) or ""
    return start, (end if dash else start)


@dataclass(frozen=True)
class StudyMatch:
    """One study a search found. ``instances``: as the PACS counts them (None: not said)."""

    study_uid: str
    date: str = ""  # YYYYMMDD
    time: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()
    instances: int | None = None
    patient_name: str = field(default="", repr=False)
    patient_id: str = field(default="", repr=False)
    accession: str = field(default="", repr=False)

    @property
    def date_text(self) -> str:
        d = self.date
        return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


@dataclass(frozen=True)
class SeriesMatch:
    series_uid: str
    modality: str = ""
    number: int | None = None
    instances: int | None = None
    view: str = ""  # ViewPosition, where the PACS says it

    @property
    def readable(self) -> bool:
        return self.modality.upper() in READABLE_MODALITIES


@dataclass(frozen=True)
class InstanceMatch:
    sop_uid: str
    sop_class: str
    series_uid: str


def study_identifier(q: StudyQuery) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.StudyDate = q.date_range
    ds.StudyTime = ""
    ds.StudyDescription = ""
    ds.ModalitiesInStudy = list(q.modalities) if q.modalities else ""
    ds.NumberOfStudyRelatedInstances = ""
    ds.PatientName = q.patient_name
    ds.PatientID = q.patient_id
    ds.AccessionNumber = q.accession
    return ds


def series_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    ds.SeriesNumber = ""
    ds.NumberOfSeriesRelatedInstances = ""
    ds.ViewPosition = ""
    return ds


def instance_identifier(study_uid: str, series_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""
    return ds


def text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def number(ds: Dataset, keyword: str) -> int | None:
    try:
        return int(text(ds, keyword))
    except ValueError:
        return None


def study_match(ds: Dataset) -> StudyMatch | None:
    uid = text(ds, "StudyInstanceUID")
    if not uid:
        return None
    modalities = tuple(m for m in text(ds, "ModalitiesInStudy").split("\\") if m)
    return StudyMatch(uid, text(ds, "StudyDate"), text(ds, "StudyTime"),
                      text(ds, "StudyDescription"), modalities,
                      number(ds, "NumberOfStudyRelatedInstances"), text(ds, "PatientName"),
                      text(ds, "PatientID"), text(ds, "AccessionNumber"))


def series_match(ds: Dataset) -> SeriesMatch | None:
    uid = text(ds, "SeriesInstanceUID")
    if not uid:
        return None
    return SeriesMatch(uid, text(ds, "Modality").upper(), number(ds, "SeriesNumber"),
                       number(ds, "NumberOfSeriesRelatedInstances"), text(ds, "ViewPosition"))


def instance_match(ds: Dataset, series_uid: str) -> InstanceMatch | None:
    uid = text(ds, "SOPInstanceUID")
    return InstanceMatch(uid, text(ds, "SOPClassUID"), series_uid) if uid else None


def reading_order(series: list[SeriesMatch]) -> tuple[list[SeriesMatch], list[SeriesMatch]]:
    """(model-readable series, frontal first; the rest), each by series number."""
    def key(s: SeriesMatch) -> tuple[int, int]:
        return (0 if s.view.upper() in FRONTAL_VIEWS else 1, s.number or 0)
    readable = sorted((s for s in series if s.readable), key=key)
    rest = sorted((s for s in series if not s.readable), key=lambda s: s.number or 0)
    return readable, rest


def wanted(study: StudyMatch, q: StudyQuery) -> bool:
    """A PACS that ignores ModalitiesInStudy matching (some do) still answers every study: keep
    those with a wanted modality, and those that do not say theirs."""
    if not q.modalities or not study.modalities:
        return True
    return bool({m.upper() for m in study.modalities} & {m.upper() for m in q.modalities})
