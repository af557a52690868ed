"""Reading the reports CSV (and finding DICOMs by SOP Instance UID) for ``labels-from-reports``.

A PACS export rarely has fixed column names, so columns are recognised by name, ignoring case,
spaces, underscores and hyphens:

- the image: a path column (``path``, ``image``, ``image_path``, ``file``, ``filename``,
  ``Image Index``) or a SOP Instance UID column (``SOPInstanceUID``, ``sop_instance_uid``,
  ``uid``), resolved later against a folder of DICOMs;
- the text: ``diagnosis`` / ``impression`` / ``conclusion`` / 诊断 / 诊断意见 / 印象 (the paper
  mines labels from the diagnosis section), else ``report`` / ``text`` / 报告; ``--text-column``
  picks another; a ``findings`` / 所见 / 影像所见 column is read but not clustered;
- optional ``patient_id`` / ``PatientID`` / 病人ID, carried to labels.csv so chexnet-train splits
  by patient.

Encodings: UTF-8 (with or without BOM), then GB18030 (the superset of GBK/GB2312 that Chinese
Excel and PACS exports use); ``--encoding`` forces one.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from chexnet.inference.errors import ChexnetInputError

log = logging.getLogger(__name__)

ENCODINGS = ("utf-8-sig", "gb18030")
PATH_NAMES = ("path", "image", "imagepath", "file", "filename", "imageindex", "imagefile")
UID_NAMES = ("sopinstanceuid", "sopuid", "uid", "instanceuid")
DIAGNOSIS_NAMES = ("diagnosis", "impression", "conclusion", "诊断", "诊断意见", "印象",
                   "诊断结果", "结论")
REPORT_NAMES = ("report", "reporttext", "text", "报告", "报告内容")
FINDINGS_NAMES = ("findings", "finding", "所见", "影像所见", "检查所见", "表现", "影像表现")
PATIENT_NAMES = ("patientid", "patient", "病人id", "患者id", "病人编号")


class ReportFileError(ChexnetInputError):
    """The reports CSV (or the label map) cannot be read as it is."""

    default_advice = ("give a CSV with a header row, an image column (path or "
                      "SOPInstanceUID) and a report or diagnosis column")


@dataclass(frozen=True)
class ReportTable:
    """One row per image. ``refs`` are paths as written (``ref_kind == "path"``) or SOP
    Instance UIDs (``"uid"``); ``texts`` are the clustered column, ``findings`` the findings
    column or empty strings; ``patients`` empty strings when the file has no patient column."""

    source: Path
    ref_kind: str
    refs: tuple[str, ...]
    texts: tuple[str, ...]
    findings: tuple[str, ...]
    patients: tuple[str, ...]
    text_column: str
    encoding: str

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def has_patients(self) -> bool:
        return any(self.patients)


def _key(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch not in " _-")


def _find(header: Sequence[str], names: Sequence[str]) -> int | None:
    keys = [_key(h) for h in header]
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def decode_file(path: Path, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and the encoding that read it (the first of ENCODINGS that works)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ReportFileError(path, "file not found", "check the path") from None
    except OSError as err:
        raise ReportFileError(path, f"cannot be read ({err.strerror})",
                              "check the file's permissions") from None
    for enc in (encoding,) if encoding else ENCODINGS:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
        except LookupError:
            raise ReportFileError(path, f"unknown encoding {encoding!r}",
                                  "use a Python codec name such as utf-8, gb18030, big5 or "
                                  "latin-1") from None
    tried = encoding or " or ".join(ENCODINGS)
    raise ReportFileError(path, f"not readable as {tried} text",
                          "save it as UTF-8, or name its encoding with --encoding")


def read_reports(path: str | Path, encoding: str | None = None,
                 text_column: str | None = None) -> ReportTable:
    """Read a reports CSV into a :class:`ReportTable` (one row per image, each image once)."""
    path = Path(path)
    text, used = decode_file(path, encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or not any(c.strip() for c in rows[0]):
        raise ReportFileError(path, "the file is empty (no header row)")
    header = rows[0]
    path_col, uid_col = _find(header, PATH_NAMES), _find(header, UID_NAMES)
    if path_col is None and uid_col is None:
        raise ReportFileError(path, f"no image column among {header}",
                              "name one column 'path' (image file, relative to the CSV) or "
                              "'SOPInstanceUID'")
    if text_column is not None:
        text_col = _find(header, (_key(text_column),))
        if text_col is None:
            raise ReportFileError(path, f"no column named {text_column!r}",
                                  f"the columns are {header}")
    else:
        text_col = _find(header, DIAGNOSIS_NAMES)
        if text_col is None:
            text_col = _find(header, REPORT_NAMES)
    if text_col is None:
        raise ReportFileError(path, f"no report text column among {header}",
                              "name it 'diagnosis' or 'report', or pass --text-column")
    find_col = _find(header, FINDINGS_NAMES)
    pat_col = _find(header, PATIENT_NAMES)
    ref_col = path_col if path_col is not None else uid_col

    def cell(rec: list[str], col: int | None) -> str:
        return rec[col].strip() if col is not None and col < len(rec) else ""

    refs, texts, findings, patients = [], [], [], []
    seen: dict[str, int] = {}
    for line_no, rec in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in rec):
            continue
        ref = cell(rec, ref_col)
        if not ref:
            raise ReportFileError(path, f"line {line_no}: empty {header[ref_col]!r}",
                                  "give every row its image, or delete the row")
        if ref in seen:
            raise ReportFileError(path, f"line {line_no}: image {ref!r} is listed again "
                                        f"(first on line {seen[ref]})",
                                  "keep one row per image (join its reports into one cell)")
        seen[ref] = line_no
        refs.append(ref)
        texts.append(cell(rec, text_col))
        findings.append(cell(rec, find_col))
        patients.append(cell(rec, pat_col))
    if not refs:
        raise ReportFileError(path, "no data rows", "the file has a header but no reports")
    return ReportTable(path, "path" if path_col is not None else "uid", tuple(refs),
                       tuple(texts), tuple(findings), tuple(patients), header[text_col], used)


def index_dicoms_by_uid(folder: str | Path) -> dict[str, Path]:
    """SOP Instance UID -> file, for every DICOM under ``folder`` (other files are skipped).

    Reads only the header up to the UID (``specific_tags``, no pixel data), so a folder of a
    few thousand images indexes in seconds.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportFileError(folder, "not a folder", "give the folder holding the DICOMs")
    found: dict[str, Path] = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True,
                                 specific_tags=["SOPInstanceUID"])
        except (InvalidDicomError, OSError, ValueError, EOFError):
            continue
        uid = str(ds.get("SOPInstanceUID", "") or "").strip()
        if uid:
            found.setdefault(uid, file)
    log.info("indexed %d DICOM files under %s", len(found), folder)
    return found
