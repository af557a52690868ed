"""Analysable DICOM studies of made-up patients, for the screening-with-priors tests: the real
RG1 chest CR (pydicom-data), reduced 3x, pixels varied per study so their scores differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid


def rg1_study(src: Path, target: Path, *, variant: int, patient: str = "PAT-1",
              issuer: str | None = None, date: str | None = None) -> Path:
    ds = pydicom.dcmread(src)
    pixels = ds.pixel_array[::3, ::3].astype(np.int32)
    rows, cols = pixels.shape
    y = np.linspace(0, 1, rows)[:, None]
    pixels = pixels + (variant * 900 * y * np.ones((1, cols))).astype(np.int32)
    ds.PixelData = np.clip(pixels, 0, 2 ** ds.BitsStored - 1).astype(np.uint16).tobytes()
    ds.Rows, ds.Columns = rows, cols
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        if key in ds and all(float(v) > 0 for v in ds[key].value):
            ds[key].value = [float(v) * 3 for v in ds[key].value]
        elif key in ds:  # RG1 carries 0\0, which dciodvfy calls an error
            del ds[key]
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientID = patient
    if issuer is not None:
        ds.IssuerOfPatientID = issuer
    ds.StudyDate, ds.StudyTime = (date, "120000") if date else ("", "")  # Type 2: empty
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target
