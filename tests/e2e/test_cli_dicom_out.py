"""`--dicom-out` as a user runs it: chexnet predict and chexnet screen write a Structured
Report and a heat-map Secondary Capture per analysed image, valid for dciodvfy, with the very
probabilities `chexnet predict --json` prints; nothing for an image that is not analysed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest

from chexnet.inference.cli.main import main
from tests.dicom_check import dciodvfy, sr_probabilities


def _predict_json(args: list[str], capsys) -> dict:
    capsys.readouterr()
    main(["predict", *args, "--json"])
    return json.loads(capsys.readouterr().out)


def test_predict_dicom_out_matches_json_and_skips_not_analysed(tiny_model, rg1_j2kr, rg3_uncr,
                                                              nih_png, tmp_path, capsys):
    out = tmp_path / "dicom"
    doc = _predict_json([str(rg1_j2kr), str(rg3_uncr), str(nih_png), "--model",
                         str(tiny_model), "--dicom-out", str(out)], capsys)
    by_name = {Path(r["path"]).name: r for r in doc["results"]}
    assert by_name[rg3_uncr.name]["status"] == "not_analysed"  # an extremity: no files
    assert "dicom" not in by_name[rg3_uncr.name]
    written = [by_name[n]["dicom"] for n in (rg1_j2kr.name, nih_png.name)]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        Path(w[k]).name for w in written for k in ("sr", "sc"))
    for name in (rg1_j2kr.name, nih_png.name):
        entry = by_name[name]
        for kind in ("sr", "sc"):
            dciodvfy(Path(entry["dicom"][kind]))
        assert sr_probabilities(Path(entry["dicom"]["sr"])) == pytest.approx(
            {f["label"]: f["probability"] for f in entry["findings"]}, abs=1e-6)
    src = pydicom.dcmread(rg1_j2kr, stop_before_pixels=True)
    sr = pydicom.dcmread(by_name[rg1_j2kr.name]["dicom"]["sr"])
    assert sr.StudyInstanceUID == src.StudyInstanceUID
    assert sr.PatientID == src.PatientID


def test_screen_dicom_out_journals_the_files_and_resume_keeps_them(tiny_model, rg1_j2kr,
                                                                   rg3_uncr, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for f in (rg1_j2kr, rg3_uncr):
        shutil.copy(f, inputs / f.name)
    out, dicom = tmp_path / "screen", tmp_path / "dicom"
    args = ["screen", str(inputs), "--out", str(out), "--model", str(tiny_model),
            "--dicom-out", str(dicom), "--workers", "1"]
    assert main(args) == 0
    rows = {Path(r["path"]).name: r for r in map(json.loads, (out / "results.jsonl")
                                                 .read_text().splitlines()[1:])}
    ok, refused = rows[rg1_j2kr.name], rows[rg3_uncr.name]
    assert refused["status"] == "not_analysed"
    assert "dicom_sr" not in refused
    files = {Path(ok["dicom_sr"]), Path(ok["dicom_sc"])}
    assert set(dicom.iterdir()) == files
    assert all(p.is_absolute() for p in files)
    for path in files:
        dciodvfy(path)
    sc = pydicom.dcmread(ok["dicom_sc"])
    assert max(sc.Rows, sc.Columns) > 900  # drawn on a rendering larger than the J2K decode
    # the row's own numbers (screening decodes a JPEG 2000 at the reduced size the model needs,
    # so they differ from predict's full-size decode in the 5th decimal)
    labels = json.loads((out / "results.jsonl").read_text().splitlines()[0])["labels"]
    assert sr_probabilities(Path(ok["dicom_sr"])) == pytest.approx(
        dict(zip(labels, ok["probabilities"], strict=True)), abs=1e-6)
    stamps = {p: p.stat().st_mtime_ns for p in files}
    assert main(args) == 0  # resumed: every row is journaled, nothing is written again
    assert {p: p.stat().st_mtime_ns for p in dicom.iterdir()} == stamps
