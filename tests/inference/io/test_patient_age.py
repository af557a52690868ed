"""Patient's Age (DICOM AS): D/W/M/Y units; malformed or zero ages are unknown, with a warning
that does not repeat the value (ages are patient data)."""

from __future__ import annotations

import numpy as np
import pytest

from chexnet.inference import check_intended_use, load_image
from chexnet.inference.io.dicom_metadata import parse_age_years

from .dicom_factory import make_dicom

PIX = (np.arange(256 * 256, dtype=np.uint16).reshape(256, 256) % 4000)


@pytest.mark.parametrize(("value", "years"), [
    ("045Y", 45.0), ("006M", 0.5), ("002W", 14 / 365.25), ("010D", 10 / 365.25),
    ("000Y", None), ("000D", None), ("45", None), ("ABCY", None), ("", None), (None, None)])
def test_age_strings(value, years):
    got = parse_age_years(value)
    assert got == (pytest.approx(years) if years is not None else None)


@pytest.mark.filterwarnings("ignore:Invalid value for VR AS")  # writing the malformed one
@pytest.mark.parametrize(("age", "child", "unknown"), [
    ("000Y", False, True), ("0X5Y", False, True), ("006M", True, False), ("045Y", False, False)])
def test_the_gate_says_what_it_made_of_the_age(tmp_path, age, child, unknown):
    image = load_image(make_dicom(tmp_path / "a.dcm", PIX, bits_stored=12, PatientAge=age))
    warnings = check_intended_use(image).warnings
    assert any("younger than 18" in w for w in warnings) is child
    assert any("age in the header is malformed or zero" in w for w in warnings) is unknown
    assert not any(age in w for w in warnings)  # the value itself is never repeated
