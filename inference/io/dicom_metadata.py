"""DICOM attributes -> :class:`ImageMetadata`. Deliberately keeps no patient-identifying data."""

from __future__ import annotations

import re

from pydicom.dataset import Dataset

from chexnet.inference.io.image import ImageMetadata
from chexnet.inference.io.uids import DicomUids

_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY])\s*$", re.IGNORECASE)
_AGE_UNIT_YEARS = {"D": 1 / 365.25, "W": 7 / 365.25, "M": 1 / 12, "Y": 1.0}


def parse_age_years(value: object) -> float | None:
    """DICOM AS (``"045Y"``, ``"006M"``, ``"010D"``, ``"002W"``) -> years; ``None`` if absent,
    malformed or zero (``"000Y"``: a placeholder some modalities write, not a newborn)."""
    if value in (None, ""):
        return None
    m = _AGE.match(str(value))
    if not m or int(m.group(1)) == 0:
        return None
    return int(m.group(1)) * _AGE_UNIT_YEARS[m.group(2).upper()]


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value in (None, ""):
        return None
    text = str(value).strip()
    return text.upper() if text else None


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


def _spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            row, col = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row > 0 and col > 0:  # several real files carry 0\0
            return (row, col)
    return None


def _view_position(ds: Dataset) -> str | None:
    view = _text(ds, "ViewPosition")
    if view:
        return view
    # Fall back to the View Code Sequence meaning (e.g. "postero-anterior", "lateral").
    seq = ds.get("ViewCodeSequence")
    if seq:
        meaning = str(seq[0].get("CodeMeaning", "")).lower()
        for needle, code in (("postero-anterior", "PA"), ("antero-posterior", "AP"),
                             ("lateral", "LL"), ("decubitus", "DECUBITUS")):
            if needle in meaning:
                return code
    return None


def dicom_metadata(ds: Dataset, photometric: str) -> ImageMetadata:
    tsyntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    return ImageMetadata(
        source="dicom",
        modality=_text(ds, "Modality"),
        view_position=_view_position(ds),
        body_part=_text(ds, "BodyPartExamined"),
        photometric=photometric,
        patient_age_years=parse_age_years(ds.get("PatientAge")),
        age_unreadable=(str(ds.get("PatientAge") or "").strip() != ""
                        and parse_age_years(ds.get("PatientAge")) is None),
        pixel_spacing_mm=_spacing(ds),
        uids=DicomUids(_text(ds, "StudyInstanceUID"), _text(ds, "SeriesInstanceUID"),
                       _text(ds, "SOPInstanceUID")),
        series_number=_int(ds, "SeriesNumber"),
        instance_number=_int(ds, "InstanceNumber"),
        image_laterality=_text(ds, "ImageLaterality"),
        number_of_frames=_int(ds, "NumberOfFrames") or 1,
        samples_per_pixel=_int(ds, "SamplesPerPixel") or 1,
        bits_stored=_int(ds, "BitsStored") or 8,
        transfer_syntax=getattr(tsyntax, "name", None),
    )
