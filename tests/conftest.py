"""Shared fixtures: real DICOMs from pydicom-data, the NIH sample from ../shared, tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
NIH_SAMPLE = SHARED / "data" / "nih14-sample"


def pydicom_data_file(name: str) -> Path:
    """A file from the pydicom-data package (a dev dependency); skip the test when absent."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not found: install the dev extra (pydicom-data)")
    return Path(path)


@pytest.fixture(scope="session")
def rg1_uncr() -> Path:
    """Real CR chest PA, MONOCHROME1, 15-bit, uncompressed, 1841x1955."""
    return pydicom_data_file("RG1_UNCR.dcm")


@pytest.fixture(scope="session")
def rg1_j2kr() -> Path:
    """The same radiograph, JPEG 2000 lossless."""
    return pydicom_data_file("RG1_J2KR.dcm")


@pytest.fixture(scope="session")
def rg1_j2ki() -> Path:
    """The same radiograph, JPEG 2000 lossy."""
    return pydicom_data_file("RG1_J2KI.dcm")


@pytest.fixture(scope="session")
def rg3_uncr() -> Path:
    """Real CR of an extremity (not a chest), MONOCHROME1, 10-bit."""
    return pydicom_data_file("RG3_UNCR.dcm")


@pytest.fixture(scope="session")
def nih_sample() -> Path:
    if not (NIH_SAMPLE / "images").is_dir():
        pytest.skip(f"NIH sample not found at {NIH_SAMPLE} (the shared data folder is absent)")
    return NIH_SAMPLE


@pytest.fixture(scope="session")
def nih_png(nih_sample: Path) -> Path:
    return nih_sample / "images" / "00000075_000.png"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model package with the real contract (probs + in-graph CAMs), built with onnx."""
    from tests.tiny_model import build_tiny_package

    return build_tiny_package(tmp_path_factory.mktemp("models") / "tiny.onnx")
