"""Checks of written DICOM results shared by the dicom_out tests: dciodvfy, and reading the
Structured Report's numbers back."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

#: dciodvfy warnings that are expected, each for a stated reason (anything else fails a test):
#: chexnet's private coding scheme (declared in the Coding Scheme Identification Sequence; no
#: validator knows a private designator); values copied from the source as they are (a
#: retired-form person name in pydicom-data's RG1); a PNG's empty patient and study ID (type 2,
#: documented; only a DICOMDIR would want them); Laterality empty when nothing says which.
ACCEPTED_WARNINGS = (
    r"Unrecognized defined term = <99CHEXNET>",
    r"Value dubious for this VR \[PN\] .* Retired Person Name form",
    r"</(PatientID|StudyID)\(.*needed to build DICOMDIR",
    r"</Laterality\(0020,0060\)> - is only permitted to be empty when actually unknown",
)


def dciodvfy(path: Path) -> str:
    """dciodvfy's report on ``path``; asserts no error and no unexplained warning."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed: apt-get install dicom3tools")
    out = subprocess.run([tool, "-new", str(path)], capture_output=True, text=True, timeout=60)
    text = out.stdout + out.stderr
    errors = [line for line in text.splitlines() if "Error" in line]
    assert not errors, f"{path.name}: dciodvfy errors:\n" + "\n".join(errors)
    warnings = [line for line in text.splitlines() if line.startswith("Warning")
                and not any(re.search(p, line) for p in ACCEPTED_WARNINGS)]
    assert not warnings, f"{path.name}: unexpected dciodvfy warnings:\n" + "\n".join(warnings)
    return text


def sr_probabilities(path: Path) -> dict[str, float]:
    """The Structured Report's probability per finding (tracking identifier = the label)."""
    ds = pydicom.dcmread(path)
    measurements = next(item for item in ds.ContentSequence
                        if item.ConceptNameCodeSequence[0].get("CodeValue") == "126010")
    found = {}
    for group in measurements.ContentSequence:
        label, value = None, None
        for item in group.ContentSequence:
            code = item.ConceptNameCodeSequence[0].get("CodeValue")
            if code == "112039":  # Tracking Identifier
                label = item.TextValue
            elif code == "122157":  # Probability
                value = float(item.MeasuredValueSequence[0].NumericValue)
        if label is not None and value is not None:
            found[label] = value
    return found


def sr_texts(path: Path) -> list[str]:
    ds = pydicom.dcmread(path)
    out = []

    def walk(items) -> None:
        for item in items:
            if item.ValueType == "TEXT":
                out.append(item.TextValue)
            walk(item.get("ContentSequence", []))

    walk(ds.ContentSequence)
    return out
