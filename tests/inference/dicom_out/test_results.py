"""write_dicom_results on real files: valid DICOM (dciodvfy), in the source's study, the
numbers of the prediction, a heat map a reader can see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from chexnet.inference import Engine
from chexnet.inference.dicom_out import DicomResults, write_dicom_results
from chexnet.inference.dicom_out.codes import finding_code
from chexnet.inference.errors import DicomResultsError
from chexnet.inference.io.image_file import open_image_file
from chexnet.inference.package.card import DEMO_NOTICE
from chexnet.inference.render.overlay import legend_height
from chexnet.inference.scoring.file_input import read_input
from chexnet.inference.scoring.prediction import Prediction
from chexnet.inference.status import Status
from tests.dicom_check import dciodvfy, sr_probabilities, sr_texts


@pytest.fixture(scope="module")
def engine(tiny_model: Path) -> Engine:
    return Engine(tiny_model, device="cpu")


def _write(engine: Engine, path: Path, out: Path) -> tuple[DicomResults, Prediction]:
    opened = open_image_file(path, with_pixels=True)
    read = read_input(opened, engine.card.preprocess)
    pred = engine.score([read.prepared])[0]
    return write_dicom_results(opened, read.image, pred, engine.model_id, engine.card,
                               out), pred


def test_dicom_source_results_are_valid_and_in_its_study(engine, rg1_uncr, tmp_path):
    written, pred = _write(engine, rg1_uncr, tmp_path)
    assert {written.sr.name, written.sc.name} == {p.name for p in tmp_path.iterdir()}
    for path in (written.sr, written.sc):
        dciodvfy(path)
    src = pydicom.dcmread(rg1_uncr, stop_before_pixels=True)
    sr, sc = pydicom.dcmread(written.sr), pydicom.dcmread(written.sc)
    for ds in (sr, sc):
        assert ds.StudyInstanceUID == src.StudyInstanceUID
        assert ds.SeriesInstanceUID != src.SeriesInstanceUID
        for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                        "AccessionNumber", "StudyDate", "StudyID"):
            assert ds.get(keyword) == src.get(keyword), keyword
        assert ds.Manufacturer == "chexnet"
    assert sr.SeriesDescription == "chexnet SR"
    assert sc.SeriesDescription == "chexnet heat map"
    assert sr.SeriesInstanceUID != sc.SeriesInstanceUID
    assert written.sr.name == f"{sr.SOPInstanceUID}.dcm"
    evidence = {ref.ReferencedSOPInstanceUID
                for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence
                for ref in series.ReferencedSOPSequence}
    assert evidence == {src.SOPInstanceUID, sc.SOPInstanceUID}
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert sr_probabilities(written.sr) == pytest.approx(
        {f.label: f.probability for f in pred.ranked}, abs=1e-6)
    texts = sr_texts(written.sr)
    assert DEMO_NOTICE in texts
    assert engine.card.threshold_rule in texts
    assert f"sha256={engine.sha256}" in texts  # algorithm parameters


def test_heat_map_is_coloured_inside_the_crop_box_and_grey_outside(engine, rg1_uncr, tmp_path):
    written, pred = _write(engine, rg1_uncr, tmp_path)
    sc = pydicom.dcmread(written.sc)
    assert (sc.PhotometricInterpretation, sc.BitsAllocated, sc.SamplesPerPixel) == ("RGB", 8, 3)
    assert sc.BurnedInAnnotation == "YES"
    rgb = sc.pixel_array.astype(int)
    assert max(rgb.shape[:2]) <= 1024 + legend_height(4)
    image = rgb[:rgb.shape[0] - legend_height(4)]  # the legend has 4 lines (demo model)
    scale = image.shape[0] / pred.image_shape[0]
    box = pred.crop_box
    assert not box.covers(pred.image_shape)  # RG1 is cropped to its square centre

    def coloured(a: np.ndarray) -> np.ndarray:
        return (np.abs(a[..., 0] - a[..., 1]) > 8) | (np.abs(a[..., 1] - a[..., 2]) > 8)

    y0, y1 = int(box.y0 * scale) - 3, int(box.y1 * scale) + 3  # outside: past the outline
    outside = np.concatenate([image[:max(y0, 0)], image[y1:]])
    assert outside.size
    assert not coloured(outside).any()
    inside = image[y0 + 6:y1 - 6, int(box.x0 * scale) + 6:int(box.x1 * scale) - 6]
    assert coloured(inside).mean() > 0.05


def test_png_source_makes_a_valid_study_of_its_own(engine, nih_png, tmp_path):
    written, pred = _write(engine, nih_png, tmp_path)
    for path in (written.sr, written.sc):
        dciodvfy(path)
    sr, sc = pydicom.dcmread(written.sr), pydicom.dcmread(written.sc)
    assert sr.StudyInstanceUID == sc.StudyInstanceUID
    assert str(sr.PatientName) == ""
    assert sr.PatientID == ""
    assert sr_probabilities(written.sr) == pytest.approx(
        {f.label: f.probability for f in pred.ranked}, abs=1e-6)


def test_writing_again_replaces_the_same_files(engine, rg1_uncr, tmp_path):
    first, _ = _write(engine, rg1_uncr, tmp_path)
    second, _ = _write(engine, rg1_uncr, tmp_path)
    assert first == second
    assert len(list(tmp_path.iterdir())) == 2


def test_not_analysed_prediction_is_refused(engine, rg1_uncr, tmp_path):
    opened = open_image_file(rg1_uncr, with_pixels=True)
    pred = Prediction(path=rg1_uncr, model=engine.model_id, status=Status.NOT_ANALYSED,
                      labels=engine.labels, reasons=("refused",))
    with pytest.raises(DicomResultsError, match="not analysed"):
        write_dicom_results(opened, opened.load(), pred, engine.model_id, engine.card, tmp_path)
    assert not list(tmp_path.iterdir())


def test_every_chestxray14_label_has_a_code():
    from chexnet.inference.package.card import CHESTXRAY14_LABELS

    for label in CHESTXRAY14_LABELS:
        code = finding_code(label)
        assert code.scheme_designator in ("SCT", "DCM", "99CHEXNET")
        assert code.meaning
    assert finding_code("Pleural_Effusion").value == "60046008"
    assert finding_code("my own label").scheme_designator == "99CHEXNET"
