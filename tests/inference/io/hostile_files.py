"""Hostile and damaged DICOMs for the reliability tests, made at test time from a small valid one
with patient data planted in it (so a test can prove no message ever repeats it)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pydicom

from tests.inference.io.dicom_factory import make_dicom

#: Patient data planted in every file; no chexnet message or output may contain any of it.
PLANTED = {"PatientName": "Zyxwvu^Planted", "PatientID": "PHI7731995",
           "PatientBirthDate": "19230417", "AccessionNumber": "ACC55512"}
PLANTED_NEEDLES = ("zyxwvu", "planted", "phi7731995", "19230417", "acc55512")


def phi_in(text: str) -> list[str]:
    low = text.lower()
    return [n for n in PLANTED_NEEDLES if n in low]


def radiograph_like(shape=(256, 256), seed=0) -> np.ndarray:
    """A 12-bit image with a radiograph's spread of values (a ramp plus texture)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(300, 3800, shape[1])[None, :] + rng.normal(0, 120, shape)
    return np.clip(ramp, 0, 4095).astype(np.uint16)


def planted_dicom(path: Path, seed: int = 0, **attrs) -> Path:
    """A small valid CR chest PA with the :data:`PLANTED` patient data."""
    return make_dicom(path, radiograph_like(seed=seed), bits_stored=12, **{**PLANTED, **attrs})


def with_vr(src: Path, dst: Path, keyword: str, vr: bytes) -> Path:
    """``src`` with the VR bytes of the (explicit VR) element ``keyword`` replaced by ``vr``."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    raw = src.read_bytes()
    head = (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little")
    at = raw.index(head + pydicom.datadict.dictionary_VR(tag).encode())
    dst.write_bytes(raw[:at + 4] + vr + raw[at + 6:])
    return dst


def edited(src: Path, dst: Path, **attrs) -> Path:
    """``src`` with attributes changed (through pydicom, so the file stays well formed)."""
    ds = pydicom.dcmread(src)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    ds.save_as(dst)
    return dst


def lying_pixel_length(src: Path, dst: Path, claimed: int) -> Path:
    """``src`` whose native pixel data element claims ``claimed`` bytes; the file is extended
    sparsely to match, so it is that large on paper and tiny on disk."""
    raw = bytearray(src.read_bytes())
    at = raw.rindex(b"\xe0\x7f\x10\x00OW\x00\x00")
    raw[at + 8:at + 12] = claimed.to_bytes(4, "little")
    dst.write_bytes(bytes(raw))
    os.truncate(dst, at + 12 + claimed)
    return dst
