"""Reading reports CSVs (columns, encodings, named errors) and finding DICOMs by SOP UID."""

from __future__ import annotations

import shutil

import pydicom
import pytest

from chexnet.inference.errors import ChexnetInputError
from chexnet.training.reports.report_files import (
    ReportFileError,
    index_dicoms_by_uid,
    read_reports,
)

ROWS = [("a.png", "P1", "双肺纹理增多", "两肺纹理增粗"),
        ("b.png", "P2", "未见明显异常", "心肺膈正常")]


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def csv_text(header="path,patient_id,diagnosis,findings"):
    return header + "\n" + "".join(",".join(r) + "\n" for r in ROWS)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_chinese_csv_in_utf8_with_or_without_bom_and_in_gb18030(tmp_path, encoding):
    t = read_reports(write(tmp_path / "r.csv", csv_text(), encoding))
    assert t.texts == ("双肺纹理增多", "未见明显异常")
    assert t.findings == ("两肺纹理增粗", "心肺膈正常")
    assert t.refs == ("a.png", "b.png")
    assert t.patients == ("P1", "P2")
    assert t.ref_kind == "path"
    assert t.text_column == "diagnosis"
    assert t.encoding == ("utf-8-sig" if encoding.startswith("utf-8") else "gb18030")


def test_column_names_are_matched_loosely_and_diagnosis_beats_report(tmp_path):
    text = "Image Path,Patient-ID,Report Text,Diagnosis\nx.png,P9,long report,胸腔积液\n"
    t = read_reports(write(tmp_path / "r.csv", text))
    assert t.texts == ("胸腔积液",)
    assert t.patients == ("P9",)
    t2 = read_reports(tmp_path / "r.csv", text_column="report_text")
    assert t2.texts == ("long report",)
    zh = "影像号,SOPInstanceUID,诊断意见\n1,1.2.3,主动脉硬化\n"
    t3 = read_reports(write(tmp_path / "zh.csv", zh))
    assert t3.ref_kind == "uid"
    assert t3.refs == ("1.2.3",)
    assert t3.texts == ("主动脉硬化",)
    assert not t3.has_patients


@pytest.mark.parametrize(("text", "match"), [
    ("", "empty"),
    ("patient_id,diagnosis\nP1,x\n", "no image column"),
    ("path,patient_id\na.png,P1\n", "no report text column"),
    ("path,diagnosis\n", "no data rows"),
    ("path,diagnosis\na.png,x\nb.png,y\na.png,z\n", r"line 4: image 'a.png' is listed again"),
    ("path,diagnosis\n,x\n", "line 2: empty 'path'"),
])
def test_bad_reports_files_are_named_errors_naming_the_file(tmp_path, text, match):
    path = write(tmp_path / "reports.csv", text)
    with pytest.raises(ReportFileError, match=match) as err:
        read_reports(path)
    assert isinstance(err.value, ChexnetInputError)
    assert str(path) in str(err.value)


def test_missing_file_unknown_column_and_undecodable_bytes(tmp_path):
    with pytest.raises(ReportFileError, match="file not found"):
        read_reports(tmp_path / "nope.csv")
    write(tmp_path / "r.csv", csv_text())
    with pytest.raises(ReportFileError, match="no column named 'impression'"):
        read_reports(tmp_path / "r.csv", text_column="impression")
    with pytest.raises(ReportFileError, match="unknown encoding"):
        read_reports(tmp_path / "r.csv", encoding="no-such-codec")
    # UTF-16 is neither UTF-8 nor GB18030: a clear error, not mojibake
    bad = write(tmp_path / "u16.csv", csv_text(), "utf-16")
    with pytest.raises(ReportFileError, match="not readable as utf-8-sig or gb18030") as err:
        read_reports(bad)
    assert "--encoding" in str(err.value)
    assert read_reports(bad, encoding="utf-16").texts[0] == "双肺纹理增多"


def test_dicoms_are_found_by_sop_instance_uid(tmp_path, rg1_uncr, rg1_j2kr):
    folder = tmp_path / "dicoms" / "series"
    folder.mkdir(parents=True)
    shutil.copy(rg1_uncr, folder / "IM0001")  # no suffix, as PACS exports often are
    shutil.copy(rg1_j2kr, folder / "IM0002.dcm")
    (folder / "notes.txt").write_text("not a DICOM")
    found = index_dicoms_by_uid(tmp_path / "dicoms")
    uid1 = str(pydicom.dcmread(rg1_uncr, stop_before_pixels=True).SOPInstanceUID)
    uid2 = str(pydicom.dcmread(rg1_j2kr, stop_before_pixels=True).SOPInstanceUID)
    expected = {uid1: folder / "IM0001"}
    expected.setdefault(uid2, folder / "IM0002.dcm")  # the two files may share one UID
    assert found == expected
    with pytest.raises(ReportFileError, match="not a folder"):
        index_dicoms_by_uid(tmp_path / "missing")
