"""Folders are studies: grouped by UIDs, ordered, frontal first, bad files set aside."""

from __future__ import annotations

import numpy as np
from pydicom.uid import generate_uid

from chexnet.inference import scan

from .dicom_factory import make_dicom

PIX = np.tile(np.arange(64, dtype=np.uint16) * 64, (64, 1))


def test_grouping_ordering_and_frontal_preference(tmp_path):
    study_a, study_b = generate_uid(), generate_uid()
    lateral_series, frontal_series, other_series = generate_uid(), generate_uid(), generate_uid()
    # written in a deliberately unhelpful order and with meaningless names
    make_dicom(tmp_path / "f3", PIX, study_uid=study_a, series_uid=lateral_series,
               SeriesNumber=1, InstanceNumber=1, ViewPosition="LL")
    make_dicom(tmp_path / "f1", PIX, study_uid=study_a, series_uid=frontal_series,
               SeriesNumber=2, InstanceNumber=2, ViewPosition="PA")
    make_dicom(tmp_path / "f2", PIX, study_uid=study_a, series_uid=frontal_series,
               SeriesNumber=2, InstanceNumber=1, ViewPosition="PA")
    (tmp_path / "sub").mkdir()
    make_dicom(tmp_path / "sub" / "x.dcm", PIX, study_uid=study_b, series_uid=other_series,
               SeriesNumber=1, InstanceNumber=1)
    (tmp_path / "notes.txt").write_text("not an image")

    result = scan([tmp_path])
    by_uid = {s.uid: s for s in result.studies}
    assert set(by_uid) == {study_a, study_b}
    a = by_uid[study_a]
    assert [s.uid for s in a.series] == [frontal_series, lateral_series]
    assert [i.path.name for i in a.instances] == ["f2", "f1", "f3"]
    assert a.primary.path.name == "f2"
    assert a.primary.is_frontal
    assert len(result.skipped) == 1
    assert "notes.txt" in str(result.skipped[0])


def test_pngs_in_a_folder_form_one_study(nih_png, tmp_path):
    for name in ("b.png", "a.png"):
        (tmp_path / name).write_bytes(nih_png.read_bytes())
    result = scan([tmp_path])
    assert len(result.studies) == 1
    assert [i.path.name for i in result.studies[0].instances] == ["a.png", "b.png"]
    assert result.studies[0].instances[0].load().shape == (1024, 1024)


def test_studies_with_a_frontal_chest_radiograph_come_first(tmp_path):
    """A folder whose first study (by name) is a CT opens on its chest radiograph."""
    ct, lateral, chest = generate_uid(), generate_uid(), generate_uid()
    make_dicom(tmp_path / "a_ct.dcm", PIX, study_uid=ct, Modality="CT", BodyPartExamined="HEAD",
               ViewPosition="")
    make_dicom(tmp_path / "b_lateral.dcm", PIX, study_uid=lateral, ViewPosition="LL")
    make_dicom(tmp_path / "c_chest.dcm", PIX, study_uid=chest, ViewPosition="AP")
    result = scan([tmp_path])
    assert [s.uid for s in result.studies] == [chest, lateral, ct]
    assert result.studies[0].primary.reads_first
    assert not result.studies[2].primary.is_chest_radiograph


def test_a_study_opens_on_its_frontal_chest_image_not_an_extremity(tmp_path):
    study = generate_uid()
    make_dicom(tmp_path / "1.dcm", PIX, study_uid=study, SeriesNumber=1, ViewPosition="PA",
               BodyPartExamined="HAND")
    make_dicom(tmp_path / "2.dcm", PIX, study_uid=study, SeriesNumber=2, ViewPosition="PA")
    (only,) = scan([tmp_path]).studies
    assert only.primary.path.name == "2.dcm"
    assert only.instances[0].path.name == "1.dcm"  # series order is unchanged
