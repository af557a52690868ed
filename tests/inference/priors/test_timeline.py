"""Prior matching on generated DICOM timelines and on real NIH PNGs with a labels CSV."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from chexnet.inference.io.study import scan
from chexnet.inference.priors import timeline as tl
from chexnet.inference.priors.identity import PatientTable
from chexnet.inference.priors.timeline import Timelines, find_priors
from tests.dicom_check import dciodvfy
from tests.inference.priors.timeline_factory import study


def _timeline(folder: Path) -> dict[str, Path]:
    """Patient PAT-1 (issuer A): 2018, 2019, 2020 (two files: lateral + PA, one study);
    the same ID from issuer B in 2017; one PAT-1 study without a Study Date; another patient."""
    uid = "1.2.826.0.1.3680043.8.498.2020"
    return {
        "2018": study(folder, "2018", issuer="A", date="20180105"),
        "2019": study(folder, "2019", issuer="A", date="20190304", time="0900"),
        "2020pa": study(folder, "2020pa", issuer="A", date="20200707", study_uid=uid),
        "2020lat": study(folder, "2020lat", issuer="A", date="20200707", study_uid=uid,
                         view="LL"),
        "other_issuer": study(folder, "other_issuer", issuer="B", date="20170101"),
        "undated": study(folder, "undated", issuer="A"),
        "stranger": study(folder, "stranger", patient="PAT-2", issuer="A", date="20150101"),
        "no_id": study(folder, "no_id", patient=None, date="20200101"),
    }


def test_dicom_timeline(tmp_path: Path) -> None:
    f = _timeline(tmp_path)
    lines = Timelines.build([tmp_path])
    latest = lines.search(f["2020lat"])  # any file of the study finds the study's priors
    assert [m.path for m in latest.priors] == [f["2019"], f["2018"]]  # most recent first
    assert [m.when_text for m in latest.priors] == ["2019-03-04", "2018-01-05"]
    assert latest.reason is None
    assert latest.latest.path == f["2019"]
    assert latest.interval_days() == 491  # 2019-03-04 -> 2020-07-07
    # other issuer's 2017 study and the undated study are never priors
    assert lines.search(f["2019"]).latest.path == f["2018"]
    first = lines.search(f["2018"])
    # its only earlier study with this ID is issuer B's: another patient, and said so
    assert first.priors == ()
    assert first.reason == tl.OTHER_ISSUER
    assert lines.search(f["undated"]).reason == tl.NO_DATE
    assert lines.search(f["no_id"]).reason == tl.NO_PATIENT
    assert lines.search(f["stranger"]).reason == tl.NO_EARLIER
    assert lines.search(tmp_path / "missing.dcm").reason == tl.NOT_READ


def test_other_issuer_is_another_patient(tmp_path: Path) -> None:
    old = study(tmp_path, "old", issuer="B", date="20170101")
    new = study(tmp_path, "new", issuer="A", date="20200101")
    search = find_priors(new, [old])
    assert search.priors == ()
    assert search.reason.startswith("other issuer")
    assert "PAT-1" not in search.reason
    # without an issuer on either side they are one patient
    a = study(tmp_path / "n", "a", date="20170101")
    b = study(tmp_path / "n", "b", date="20200101")
    assert find_priors(b, [a]).latest.path == a


def test_same_study_uid_is_not_a_prior(tmp_path: Path) -> None:
    uid = "1.2.826.0.1.3680043.8.498.77"
    a = study(tmp_path / "x", "a", date="20200101", time="0800", study_uid=uid)
    b = study(tmp_path / "y", "b", date="20200101", time="0900", study_uid=uid)
    assert find_priors(b, [a]).reason == tl.NO_EARLIER



def test_a_study_scanned_in_two_parts_is_one_prior(tmp_path: Path) -> None:
    """The viewer joins the open's studies to a worklist's (scanned apart): a prior study
    split between them is listed once, and each of its files finds the same priors."""
    f = _timeline(tmp_path)
    later = study(tmp_path, "2021", issuer="A", date="20210101")
    parts = [*scan([f["2020pa"]]).studies, *scan([f["2020lat"], f["2019"], later]).studies]
    lines = Timelines.from_studies(parts)
    search = lines.search(later)
    assert [m.path for m in search.priors] == [f["2020pa"], f["2019"]]
    assert [m.path for m in lines.search(f["2020lat"]).priors] == [f["2019"]]

def test_study_represented_by_its_frontal_image(tmp_path: Path) -> None:
    f = _timeline(tmp_path)
    later = study(tmp_path, "2021", issuer="A", date="20210101")
    search = Timelines.build([tmp_path]).search(later)
    assert search.latest.path == f["2020pa"]  # not the lateral of the same study
    assert [m.when_text for m in search.priors] == ["2020-07-07", "2019-03-04", "2018-01-05"]


def _nih_csv(nih_sample: Path, folder: Path, rows: dict[str, int]) -> None:
    """A Data_Entry-format CSV declaring real NIH images follow-ups of one patient (the shared
    sample has one image per patient)."""
    folder.mkdir()
    with open(folder / "Data_Entry_2017.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID"])
        for name, follow_up in rows.items():
            w.writerow([name, "No Finding", follow_up, "4242"])
            (folder / name).symlink_to(nih_sample / "images" / name)


def test_nih_follow_ups_in_order(nih_sample: Path, tmp_path: Path) -> None:
    rows = {"00000075_000.png": 2, "00000100_000.png": 0, "00000129_000.png": 1}
    _nih_csv(nih_sample, tmp_path / "ds", rows)
    lines = Timelines.build([tmp_path / "ds"])  # the CSV beside the images is found
    last = lines.search(tmp_path / "ds" / "00000075_000.png")
    assert [m.path.name for m in last.priors] == ["00000129_000.png", "00000100_000.png"]
    assert [m.when_text for m in last.priors] == ["follow-up 1", "follow-up 0"]
    assert last.interval_days() is None  # follow-up numbers are not days
    assert lines.search(tmp_path / "ds" / "00000100_000.png").reason == tl.NO_EARLIER


def test_nih_sample_real_csv_one_image_per_patient(nih_sample: Path) -> None:
    images = sorted((nih_sample / "images").glob("*.png"))[:40]
    table = PatientTable.from_csv(nih_sample / "Data_Entry_2017.csv")
    lines = Timelines.build(images, table)
    assert {lines.search(p).reason for p in images} == {tl.NO_EARLIER}
    no_table = Timelines.build(images[:2], PatientTable({}))
    assert no_table.search(images[0]).reason == tl.NO_PATIENT_RASTER


def test_generated_studies_are_valid_dicom(tmp_path: Path) -> None:
    """The timeline files are valid CR objects (dciodvfy); an undated one lacks only what a
    DICOMDIR would want."""
    dciodvfy(study(tmp_path, "full", issuer="A", date="20190304", time="0900"))
    undated = study(tmp_path, "undated", patient=None)
    out = subprocess.run(["dciodvfy", "-new", str(undated)], capture_output=True, text=True,
                         timeout=60)
    lines = (out.stdout + out.stderr).splitlines()
    assert not [ln for ln in lines if ln.startswith("Error")]
    assert {ln.split("</")[1].split("(")[0] for ln in lines if ln.startswith("Warning")} == \
        {"PatientID", "StudyDate", "StudyTime"}
