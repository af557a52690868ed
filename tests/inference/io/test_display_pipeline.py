"""Display pipeline order and semantics on synthetic DICOMs, against pydicom's LUT functions."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from chexnet.inference import load_image
from chexnet.inference.io.image import Window

from .dicom_factory import make_dicom

RAMP = np.tile(np.arange(0, 4096, 16, dtype=np.uint16), (64, 1))  # 64 x 256, 12-bit ramp


def test_rescale_then_window(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", RAMP, bits_stored=12, RescaleSlope=2,
                      RescaleIntercept=-1000, WindowCenter=2000, WindowWidth=4000)
    ours = load_image(path).display_u8().astype(float)
    # independent: linear window on modality values 2*v - 1000, centre 2000 width 4000
    mod = RAMP.astype(float) * 2 - 1000
    ref = np.clip(((mod - 1999.5) / 3999 + 0.5), 0, 1) * 255
    assert np.abs(ours - np.rint(ref)).max() <= 1


def test_sigmoid_voi_function(tmp_path):
    path = make_dicom(tmp_path / "s.dcm", RAMP, bits_stored=12, WindowCenter=2048,
                      WindowWidth=1024, VOILUTFunction="SIGMOID")
    ours = load_image(path).display_u8().astype(float)
    ref = 255 / (1 + np.exp(-4 * (RAMP.astype(float) - 2048) / 1024))
    assert np.abs(ours - np.rint(ref)).max() <= 1


def test_voi_lut_sequence_wins_over_the_percentile_window(tmp_path):
    path = make_dicom(tmp_path / "l.dcm", RAMP, bits_stored=12)
    ds = pydicom.dcmread(path)
    item = Dataset()
    # a LUT covering stored values 0..4095: output = sqrt-ish curve, 10-bit output
    lut = np.rint(np.sqrt(np.arange(4096) / 4095) * 1023).astype(np.uint16)
    item.LUTDescriptor = [4096, 0, 10]
    item.add_new(0x00283006, "US", lut.tolist())  # LUTData; its VR is ambiguous (US/OW)
    ds.VOILUTSequence = Sequence([item])
    ds.save_as(path)
    ours = load_image(path).display_u8().astype(float)
    ref = np.rint(lut[RAMP].astype(float) / 1023 * 255)
    assert np.abs(ours - ref).max() <= 1


@pytest.mark.parametrize(("photometric", "shape", "inverted"), [
    ("MONOCHROME2", None, False),
    ("MONOCHROME1", None, True),
    ("MONOCHROME2", "INVERSE", True),
    ("MONOCHROME1", "INVERSE", True),  # said twice, inverted once
])
def test_inversion_rules(tmp_path, photometric, shape, inverted):
    extra = {"PresentationLUTShape": shape} if shape else {}
    path = make_dicom(tmp_path / "m.dcm", RAMP, bits_stored=12, photometric=photometric,
                      WindowCenter=2048, WindowWidth=4096, **extra)
    img = load_image(path).display_u8()
    left, right = img[:, 0].mean(), img[:, -1].mean()
    assert (left > right) == inverted


def test_signed_pixels_with_percentile_window(tmp_path):
    signed = (RAMP.astype(np.int16) - 2048)
    path = make_dicom(tmp_path / "i.dcm", signed)
    image = load_image(path)
    win = image.default_window
    assert win.explanation.startswith("auto")
    assert -2048 <= win.center - win.width / 2 < win.center + win.width / 2 <= 2048
    u8 = image.display_u8()
    assert u8.min() == 0
    assert u8.max() == 255


def test_window_choice_changes_rendering_not_the_stored_data(tmp_path):
    path = make_dicom(tmp_path / "w.dcm", RAMP, bits_stored=12, WindowCenter=[1000, 3000],
                      WindowWidth=[500, 500], WindowCenterWidthExplanation=["LOW", "HIGH"])
    image = load_image(path)
    assert [w.explanation for w in image.windows] == ["LOW", "HIGH"]
    low, high = image.display_u8(), image.display_u8(image.windows[1])
    assert low.mean() > high.mean()
    narrow = image.display_u8(Window(2048, 2))
    assert set(np.unique(narrow)) <= {0, 255}
