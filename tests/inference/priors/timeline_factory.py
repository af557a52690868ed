"""Small DICOM studies of made-up patients, for the prior-matching tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from tests.inference.io.dicom_factory import make_dicom

PIXELS = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) % 4096)


def study(folder: Path, name: str, *, patient: str | None = "PAT-1", issuer: str | None = None,
          date: str | None = None, time: str | None = None, study_uid: str | None = None,
          view: str = "PA") -> Path:
    """One CR file of a study (``None``: the attribute empty; an issuer left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    # a valid CR object (dciodvfy): the Type 2 attributes present, empty where unknown; a
    # missing Study Date is an empty one (Type 2), a missing Patient ID an empty one too
    attrs = {"ViewPosition": view, "PatientID": patient or "", "StudyDate": date or "",
             "StudyTime": time or "", "PatientBirthDate": "", "PatientSex": "",
             "ReferringPhysicianName": "", "StudyID": "1", "AccessionNumber": "",
             "SeriesNumber": 1, "InstanceNumber": 1, "Manufacturer": "", "PatientOrientation": ""}
    if issuer is not None:
        attrs["IssuerOfPatientID"] = issuer
    return make_dicom(folder / f"{name}.dcm", PIXELS, bits_stored=12,
                      study_uid=study_uid or generate_uid(), **attrs)
