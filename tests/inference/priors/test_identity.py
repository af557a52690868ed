"""Study identities: from DICOM headers, from labels CSVs (NIH and generic); never in a repr."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pydicom
import pytest

from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.priors.identity import (
    PatientTable,
    StudyIdentity,
    find_patient_file,
    read_identity,
)
from chexnet.inference.priors.patients import PatientFileError
from tests.inference.priors.timeline_factory import study


def test_dicom_identity_from_the_header(tmp_path: Path) -> None:
    path = study(tmp_path, "a", patient="ID-77", issuer="HOSP-A", date="20190304",
                 time="101530.25", study_uid="1.2.3.4")
    ident = read_identity(path)
    assert (ident.patient, ident.issuer, ident.study_uid) == ("ID-77", "HOSP-A", "1.2.3.4")
    assert ident.when == datetime(2019, 3, 4, 10, 15, 30, 250000)
    assert ident.order is None
    assert ident.placed
    assert "ID-77" not in repr(ident)
    assert "2019" not in repr(ident)


def test_dicom_without_date_time_or_issuer(tmp_path: Path) -> None:
    no_date = read_identity(study(tmp_path, "a", patient="X"))
    assert no_date.when is None
    assert not no_date.placed
    assert no_date.issuer == ""
    date_only = read_identity(study(tmp_path, "b", patient="X", date="20200101"))
    assert date_only.when == datetime(2020, 1, 1)
    with pytest.warns(UserWarning, match="DA"):  # pydicom, writing the bad value
        bad_file = study(tmp_path, "c", patient="X", date="2020")
    assert read_identity(bad_file).when is None  # an unreadable date is no date, not a crash
    absent = pydicom.dcmread(date_file := study(tmp_path, "d", patient="X", date="20200101"))
    del absent.StudyDate
    absent.save_as(date_file)
    assert read_identity(date_file).when is None  # absent, not only empty


def test_unreadable_file_is_a_named_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"not an image at all" * 10)
    with pytest.raises(ChexnetInputError, match=r"x\.dcm"):
        read_identity(bad)


def test_nih_data_entry_table(nih_sample: Path, nih_png: Path) -> None:
    table = PatientTable.from_csv(nih_sample / "Data_Entry_2017.csv")
    assert len(table) == 420
    ident = read_identity(nih_png, table)  # 00000075_000.png: Patient ID 75, Follow-up # 0
    assert (ident.patient, ident.order, ident.when) == ("75", 0, None)
    assert find_patient_file(nih_sample / "images") == nih_sample / "Data_Entry_2017.csv"
    assert len(PatientTable.find(nih_sample / "images")) == 420
    assert read_identity(nih_png).patient is None  # no table given: no patient


def test_generic_labels_csv(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(
        "path,patient_id,study_date,Effusion\nimgs/a.png,P1,2021-05-06,1\nb.png,P2,,0\n")
    table = PatientTable.find(tmp_path)
    assert table.lookup(tmp_path / "a.png").when == datetime(2021, 5, 6)
    assert table.lookup("b.png").patient == "P2"
    assert table.lookup("b.png").when is None
    assert table.lookup("c.png") is None
    assert "P1" not in repr(table)


def test_labels_csv_without_patient_column(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("path,Effusion\na.png,1\n")
    with pytest.raises(PatientFileError, match="patient column"):
        PatientTable.from_csv(tmp_path / "labels.csv")
    assert PatientTable.find(tmp_path) is None


def test_patient_keys_salted_per_folder_and_kept(tmp_path: Path) -> None:
    from chexnet.inference.priors.keys import KEY_FILE, PatientKeys

    ident = StudyIdentity(patient="ID-77", issuer="H", when=datetime(2019, 3, 4, 10, 0),
                          order=None, study_uid="1.2")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = PatientKeys.in_folder(tmp_path / "a"), PatientKeys.in_folder(tmp_path / "b")
    rec_a, rec_b = a.record(ident), b.record(ident)
    assert rec_a["patient"] != rec_b["patient"]  # salted per folder
    assert "ID-77" not in str(rec_a)
    assert "2019-03-04" not in str(rec_a)  # shifted
    assert rec_a == PatientKeys.in_folder(tmp_path / "a").record(ident)  # kept for a resume
    back = a.identity(rec_a)
    assert a.real_date(back) == "2019-03-04"
    assert back.when - datetime(2019, 3, 4, 10, 0) == timedelta(days=a.shift_days)
    # a bare hash would be a lookup table away: the key is an HMAC with the folder's salt
    import hashlib
    assert rec_a["patient"] != hashlib.sha256(b"ID-77").hexdigest()
    (tmp_path / "a" / KEY_FILE).write_text("{}")
    with pytest.raises(ValueError, match="--fresh"):
        PatientKeys.in_folder(tmp_path / "a")


def test_patient_key_file_is_private_from_the_start_and_a_lost_race_keeps_the_winner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import stat

    from chexnet.inference.priors import keys as keys_module
    from chexnet.inference.priors.keys import KEY_FILE, PatientKeys

    modes: list[int] = []
    real_link = os.link

    def link_and_look(src: str, dst: str) -> None:  # the temp file's mode before it is visible
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        real_link(src, dst)

    monkeypatch.setattr(keys_module.os, "link", link_and_look)
    first = PatientKeys.in_folder(tmp_path)
    assert modes == [0o600]
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temp file left

    # Another run creates the file between our read and our link: we take its keys.
    other = tmp_path / "other"
    other.mkdir()

    def someone_else_first(src: str, dst: str) -> None:
        (other / KEY_FILE).write_text((tmp_path / KEY_FILE).read_text())
        real_link(src, dst)

    monkeypatch.setattr(keys_module.os, "link", someone_else_first)
    assert PatientKeys.in_folder(other) == first
    assert [p.name for p in other.iterdir()] == [KEY_FILE]


@pytest.mark.parametrize("shift_days", [-3650, 3650])
def test_placeholder_dates_are_no_date_and_never_crash_the_keys(tmp_path: Path,
                                                                shift_days: int) -> None:
    """DICOM placeholders (99991231, 00010101) read as no date; a date the folder's shift would
    push past year 1 or 9999 (e.g. from a labels CSV) is journaled as no date, not an
    OverflowError that aborted `chexnet screen` for the whole batch."""
    from chexnet.inference.priors.keys import PatientKeys

    for day in ("99991231", "00010101"):
        assert read_identity(study(tmp_path, day, patient="X", date=day)).when is None
    assert read_identity(study(tmp_path, "ok", patient="X", date="19991231")).when == \
        datetime(1999, 12, 31)
    keys = PatientKeys(b"s" * 32, shift_days)
    for when in (datetime(9999, 12, 31), datetime(1, 1, 1)):
        rec = keys.record(StudyIdentity(patient="X", when=when))
        assert rec["when"] is None or keys.identity(rec).when - when == timedelta(shift_days)
    edge = datetime(9999, 12, 31) if shift_days > 0 else datetime(1, 1, 1)
    assert keys.record(StudyIdentity(patient="X", when=edge))["when"] is None


def test_malformed_values_warn_nothing_and_quote_nothing(tmp_path: Path, capfd) -> None:
    """pydicom's validation warnings quote the value (a Patient ID): none may escape."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # writing the bad values warns too
        path = study(tmp_path, "bad", patient="X", date="2020")
        ds = pydicom.dcmread(path)
        ds.StudyTime, ds.PatientID = "2561", "PLANTED-" + "9" * 100  # LO allows 64
        ds.save_as(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ident = read_identity(path)
    assert ident.when is None
    assert ident.patient.startswith("PLANTED-")  # read as written, for matching only
    captured = capfd.readouterr()
    assert "PLANTED" not in captured.out + captured.err
