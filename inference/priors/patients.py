"""Who is in a PNG/JPEG dataset: the patient column of its labels CSV.

PNG and JPEG files carry no Patient ID; datasets name it in their label file: the NIH
``Data_Entry_2017*.csv`` (``Image Index``, ``Patient ID``, ``Follow-up #``) or a generic
``labels.csv`` (``path``/``image``, ``patient_id``, ``follow_up`` or ``study_date``). Files are
looked up by name (the NIH layout keeps the CSV beside or above the ``images/`` folder).

Training's ``evaluation.inputs.find_label_file`` finds the same files for ``chexnet eval``;
inference may not import training, so :func:`find_patient_file` looks in the same places by the
same names (and also one folder up, for the NIH ``images/`` layout).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chexnet.inference.errors import ChexnetInputError

#: Column names, in the order tried (compared case-insensitively, spaces and "_" alike).
IMAGE_COLUMNS = ("Image Index", "path", "image", "file", "filename", "Image ID")
PATIENT_COLUMNS = ("Patient ID", "patient_id", "patient", "PatientID")
FOLLOW_UP_COLUMNS = ("Follow-up #", "follow_up", "followup", "follow-up")
DATE_COLUMNS = ("study_date", "Study Date", "StudyDate", "date")
#: The label files looked for, best first (as chexnet eval looks for them).
LABEL_FILE_PATTERNS = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017*.csv", "labels.csv")


class PatientFileError(ChexnetInputError):
    """A labels CSV that cannot say who is in the dataset."""

    default_advice = ("give a CSV with an image column ('Image Index' or 'path') and a patient "
                      "column ('Patient ID' or 'patient_id')")


@dataclass(frozen=True)
class PatientEntry:
    patient: str
    order: int | None
    when: datetime | None


class PatientTable:
    """File name -> (patient, follow-up number, study date) from a labels CSV. Holds patient
    IDs: keep it in memory, never log or write it."""

    def __init__(self, entries: dict[str, PatientEntry], source: Path | None = None) -> None:
        self._entries = entries
        self.source = source

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # no patient data
        return f"PatientTable({len(self)} images, from {self.source})"

    def lookup(self, path: str | Path) -> PatientEntry | None:
        return self._entries.get(Path(path).name)

    @classmethod
    def from_csv(cls, path: str | Path) -> PatientTable:
        path = Path(path)
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                header = reader.fieldnames or []
                image_col = _column(header, IMAGE_COLUMNS)
                patient_col = _column(header, PATIENT_COLUMNS)
                if image_col is None or patient_col is None:
                    raise PatientFileError(path, "has no image column and patient column")
                follow_col = _column(header, FOLLOW_UP_COLUMNS)
                date_col = _column(header, DATE_COLUMNS)
                entries: dict[str, PatientEntry] = {}
                for row in reader:
                    name, patient = (row.get(image_col) or "").strip(), \
                        (row.get(patient_col) or "").strip()
                    if not name or not patient:
                        continue
                    entries[Path(name).name] = PatientEntry(
                        patient, _int(row.get(follow_col) if follow_col else None),
                        _date(row.get(date_col) if date_col else None))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise PatientFileError(path, f"cannot be read as a CSV ({type(err).__name__})",
                                   "check the path; save the file as UTF-8 CSV") from err
        return cls(entries, path)

    @classmethod
    def find(cls, folder: str | Path) -> PatientTable | None:
        """The table of the label file that names a folder's images (:func:`find_patient_file`),
        or ``None`` when there is none or it has no patient column."""
        found = find_patient_file(Path(folder))
        if found is None:
            return None
        try:
            return cls.from_csv(found)
        except PatientFileError:
            return None


def find_patient_file(folder: Path) -> Path | None:
    """``Data_Entry_2017*.csv`` (v2020 first), else ``labels.csv``, in ``folder`` or the folder
    above it (NIH: ``images/`` beside the CSV)."""
    for where in (folder, folder.parent):
        for pattern in LABEL_FILE_PATTERNS:
            hits = sorted(p for p in where.glob(pattern) if p.is_file())
            if hits:
                return hits[0]
    return None


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", " ").replace("-", " ")


def _column(header: list[str], names: tuple[str, ...]) -> str | None:
    by_norm = {_norm(h): h for h in header if h}
    return next((by_norm[_norm(n)] for n in names if _norm(n) in by_norm), None)


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _date(value: str | None) -> datetime | None:
    text = (value or "").strip()
    for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None
