"""Issue 12 as a user meets it, in real processes: a folder of good images and crashers with
patient data planted in them. `chexnet predict` scores the good ones and names each bad one on
one `error:` line; `chexnet screen` writes a row for each; nothing anywhere repeats the patient
data, nothing but chexnet's own lines reaches stderr; a file name that is not UTF-8 and UIDs
that look like spreadsheet formulas do no harm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from chexnet.inference.cli.common import EXIT_INPUT_FAILED
from tests.e2e.test_cli_screen import no_traceback, read_csv, run_screen
from tests.inference.io.hostile_files import (
    edited,
    lying_pixel_length,
    phi_in,
    planted_dicom,
    with_vr,
)
from tests.inference.io.test_bad_inputs import BASIC_TEXT_SR, non_image


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    """(folder, good file names, bad file names)."""
    root = tmp_path / "in"
    root.mkdir()
    good = [planted_dicom(root / f"good{i}.dcm", seed=i).name for i in range(2)]
    base = planted_dicom(tmp_path / "base.dcm", seed=9)
    bad = [
        with_vr(base, root / "name_vr_fd.dcm", "PatientName", b"FD").name,
        with_vr(base, root / "id_vr_zz.dcm", "PatientID", b"ZZ").name,
        edited(base, root / "rgb_one_sample.dcm", PhotometricInterpretation="RGB").name,
        edited(base, root / "two_rows.dcm", Rows=[256, 256]).name,
        edited(base, root / "sheared.dcm", Columns=255).name,
        lying_pixel_length(base, root / "lying_length.dcm", 3_750_000_000).name,
    ]
    (root / "broken_link.dcm").symlink_to(tmp_path / "nowhere.dcm")
    bad.append("broken_link.dcm")
    return root, good, bad


def predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chexnet.inference.cli", "predict", *args],
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_predict_scores_the_good_and_names_each_bad_file_once(tiny_model, folder):
    root, good, bad = folder
    proc = predict(str(root), "--model", str(tiny_model), "--json")
    assert proc.returncode == EXIT_INPUT_FAILED, proc.stderr
    no_traceback(proc)
    assert phi_in(proc.stdout + proc.stderr) == []
    lines = proc.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), proc.stderr  # nothing else
    for name in bad:
        assert sum(f"/{name}: " in line for line in lines) == 1, (name, proc.stderr)
    doc = json.loads(proc.stdout)
    scored = {Path(r["path"]).name: r for r in doc["results"]}
    assert sorted(scored) == sorted(good)
    assert all(len(r["findings"]) == 14 for r in scored.values())


def test_screen_writes_a_row_for_each_and_no_patient_data(tiny_model, folder, tmp_path):
    root, good, bad = folder
    out = tmp_path / "out"
    proc = run_screen(str(root), "--out", str(out), "--model", str(tiny_model), "--workers",
                      "1", faults=None)
    no_traceback(proc)
    assert phi_in(proc.stdout + proc.stderr) == []
    # chexnet's own lines only: the named errors and the progress line
    assert all(line.startswith(("error: ", "screen: ")) for line in proc.stderr.splitlines()), \
        proc.stderr
    rows = {Path(r["path"]).name: r for r in read_csv(out / "results.csv")}
    assert {n for n, r in rows.items() if r["status"] == "ok"} == set(good)
    assert {n for n, r in rows.items() if r["status"] == "error"} == set(bad)
    for name in ("results.csv", "report.html", "results.jsonl"):
        assert phi_in((out / name).read_text()) == [], name


def test_a_structured_report_is_not_analysed_in_predict_and_screen_alike(tiny_model, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    sr = non_image(root / "report.dcm", BASIC_TEXT_SR, "SR", ValueType="CONTAINER")
    proc = predict(str(sr), "--model", str(tiny_model), "--json")
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    screened = run_screen(str(root), "--out", str(tmp_path / "out"), "--model",
                          str(tiny_model), "--workers", "1", faults=None)
    (row,) = read_csv(tmp_path / "out" / "results.csv")
    assert result["status"] == row["status"] == "not_analysed", screened.stderr
    assert result["reasons"] == [row["reason"]]
    assert row["reason"].startswith("holds no image (a Basic Text SR")


def test_a_file_name_that_is_not_utf8_is_screened_resumed_and_redone(tiny_model, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    name = os.fsdecode(b"caf\xe9\xff.dcm")  # Latin-1 bytes: not UTF-8
    planted_dicom(root / name)
    out = tmp_path / "out"
    common = ("--out", str(out), "--model", str(tiny_model), "--workers", "1")
    for extra in ((), (), ("--fresh",)):  # a first run, a resume, a fresh run
        proc = run_screen(str(root), *common, *extra, faults=None)
        assert proc.returncode == 0, proc.stderr
        no_traceback(proc)
        (row,) = read_csv(out / "results.csv")
        assert row["status"] == "ok"
        assert row["path"].endswith("caf\\xe9\\xff.dcm")  # the bad bytes, visibly escaped
        assert "caf\\xe9\\xff.dcm" in (out / "report.html").read_text()
        assert not [p for p in out.rglob(".chexnet-*")]  # no temp file left behind


@pytest.mark.parametrize("uid", ['=HYPERLINK("http://x.example/?a=1","x")', "+CMD|' /C calc'!A0",
                                 "-2+3", "@SUM(1)"])
def test_uids_that_look_like_formulas_are_inert_in_the_csv(tiny_model, tmp_path, uid):
    root = tmp_path / "in"
    root.mkdir()
    path = planted_dicom(root / "a.dcm")
    ds = pydicom.dcmread(path)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        ds[keyword].value = uid  # a hostile file does not care that a UI cannot hold this
    ds.save_as(path)
    out = tmp_path / "out"
    run_screen(str(root), "--out", str(out), "--model", str(tiny_model), "--workers", "1",
               faults=None)
    (row,) = read_csv(out / "results.csv")
    for column in ("study_uid", "series_uid", "sop_instance_uid"):
        assert row[column].lower() == "'" + uid.lower(), column
