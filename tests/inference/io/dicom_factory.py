"""Build small valid DICOM files for tests (pydicom only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def new_dataset(sop_class: str, modality: str, study_uid: str | None = None,
                series_uid: str | None = None) -> Dataset:
    """A dataset of ``sop_class`` with its file meta (explicit VR little endian) and fresh
    UIDs, no pixels yet."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = modality
    return ds


def make_dicom(path: Path, pixels: np.ndarray, *, bits_stored: int | None = None,
               photometric: str = "MONOCHROME2", study_uid: str | None = None,
               series_uid: str | None = None, **attrs) -> Path:
    """Write a single-frame greyscale CR image with the given pixels and attributes."""
    pixels = np.ascontiguousarray(pixels)
    ds = new_dataset(CR_STORAGE, "CR", study_uid, series_uid)
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientName = "Test^Patient"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    allocated = pixels.dtype.itemsize * 8
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
