"""`chexnet predict` on the bad-input corpus: one `error:` line per bad file, the good files still
scored, objects that hold no image (a structured report) not analysed with the reason (as in
`chexnet screen`), exit codes 1 (unreadable inputs) and 2 (usage), never a traceback, never
patient data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from chexnet.inference.cli.common import EXIT_INPUT_FAILED, EXIT_OK, EXIT_USAGE
from chexnet.inference.cli.main import main
from tests.inference.io.test_bad_inputs import (
    BASIC_TEXT_SR,
    PIXEL_TAG,
    nested_sequences,
    non_image,
    raster_bytes,
    rewrite,
    with_sequence_before_pixels,
)

HOSTILE_NAME = "<script>alert(1)</script>"


@pytest.fixture
def inputs(tmp_path: Path, rg1_uncr: Path) -> tuple[list[Path], list[Path]]:
    """(good files, bad files): bad ones caught while scanning headers and while loading. The
    folder also holds ``report.dcm``, a structured report (not analysed, not an error)."""
    good = [rewrite(rg1_uncr, tmp_path / "chest.dcm"), tmp_path / "chest.png"]
    good[1].write_bytes(raster_bytes("PNG"))
    raw = rg1_uncr.read_bytes()
    png = raster_bytes("PNG")
    bad = {
        "empty.dcm": b"",
        "notes.dcm": b"call the ward about bed 12\n",
        "cut_pixels.dcm": raw[: (raw.rindex(PIXEL_TAG) + len(raw)) // 2],  # found at load
        "cut.png": png[: len(png) // 2],  # found at load
    }
    paths = []
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
        paths.append(tmp_path / name)
    paths.append(with_sequence_before_pixels(rg1_uncr, tmp_path / "nested.dcm",
                                             nested_sequences(500, undefined_length=True)))
    paths.append(tmp_path / "no_such_file.dcm")
    non_image(tmp_path / "report.dcm", BASIC_TEXT_SR, "SR", ValueType="CONTAINER")
    return good, paths


def check_error_lines(err: str, bad: list[Path]) -> None:
    """Exactly one `error:` line per bad file, each naming it; nothing else names a bad file."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == len(bad), err
    for path in bad:
        assert sum(str(path) in ln for ln in errors) == 1, (path, err)
        assert sum(str(path) in ln for ln in lines) == 1, (path, err)


def test_mixed_good_and_bad_text(tiny_model, inputs, capsys):
    good, bad = inputs
    report = good[0].parent / "report.dcm"
    code = main(["predict", *map(str, good + bad), str(report), "--model", str(tiny_model)])
    out, err = capsys.readouterr()
    assert code == EXIT_INPUT_FAILED
    check_error_lines(err, bad)
    assert "Traceback" not in out + err
    for path in good:
        assert f"{path}  " in out  # the result header line of each good image
    assert out.count("above operating point:") == len(good)
    assert f"{report}  not analysed\n  not analysed: holds no image (a Basic Text SR" in out
    assert f"{len(good)} analysed, 1 not analysed, {len(bad)} unreadable" in out


def test_mixed_good_and_bad_json(tiny_model, inputs, capsys):
    good, bad = inputs
    report = good[0].parent / "report.dcm"
    code = main(["predict", *map(str, good + bad), str(report), "--model", str(tiny_model),
                 "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_INPUT_FAILED
    check_error_lines(err, bad)
    assert "Traceback" not in out + err
    doc = json.loads(out)
    results = {r["path"]: r for r in doc["results"]}
    assert sorted(results) == sorted(map(str, [*good, report]))
    assert all(len(results[str(p)]["findings"]) == 14 for p in good)
    assert results[str(report)]["status"] == "not_analysed"
    assert results[str(report)]["findings"] == []
    assert results[str(report)]["reasons"][0].startswith("holds no image (a Basic Text SR")
    types = {Path(e["path"]).name: e["type"] for e in doc["errors"]}
    assert types == {"empty.dcm": "EmptyFileError", "notes.dcm": "UnrecognisedFileError",
                     "cut_pixels.dcm": "CorruptFileError", "cut.png": "CorruptFileError",
                     "nested.dcm": "CorruptFileError",
                     "no_such_file.dcm": "ChexnetInputError"}
    assert all("\n" not in e["error"] for e in doc["errors"])


def test_a_folder_with_good_and_bad_files(tiny_model, inputs, capsys):
    good, bad = inputs
    folder = good[0].parent
    code = main(["predict", str(folder), "--model", str(tiny_model), "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_INPUT_FAILED
    present = [p for p in bad if p.exists()]
    check_error_lines(err, present)
    statuses = {r["path"]: r["status"] for r in json.loads(out)["results"]}
    assert statuses.pop(str(folder / "report.dcm")) == "not_analysed"
    assert sorted(statuses) == sorted(map(str, good))


def test_mixed_inputs_in_a_real_process(tiny_model, inputs):
    good, bad = inputs
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "chexnet.inference.cli", "predict", *map(str, good + bad),
         "--model", str(tiny_model)],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == EXIT_INPUT_FAILED, proc.stderr
    check_error_lines(proc.stderr, bad)
    assert "Traceback" not in proc.stdout + proc.stderr
    for path in good:
        assert f"{path}  " in proc.stdout


def test_missing_model_is_a_usage_error(tmp_path, rg1_uncr, capsys):
    missing = tmp_path / "no_such_model.onnx"
    code = main(["predict", str(rg1_uncr), "--model", str(missing)])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert str(missing) in lines[0]
    assert "error" in lines[0]
    assert "Traceback" not in out + err


def test_unknown_finding_is_a_usage_error(tiny_model, rg1_uncr, capsys):
    code = main(["predict", str(rg1_uncr), "--model", str(tiny_model), "--finding", "Dragons"])
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Dragons" in lines[0]
    assert "Effusion" in lines[0]  # says which findings the model knows
    assert "Traceback" not in out + err


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_hostile_patient_name_never_printed(tiny_model, tmp_path, rg1_uncr, capsys, as_json):
    def hostile(ds):
        ds.PatientName = HOSTILE_NAME
        ds.PatientID = "ID-<img src=x onerror=alert(2)>"

    path = rewrite(rg1_uncr, tmp_path / "chest.dcm", hostile)
    assert pydicom.dcmread(path, stop_before_pixels=True).PatientName == HOSTILE_NAME
    code = main(["predict", str(path), "--model", str(tiny_model), *(["--json"] * as_json)])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert str(path) in out  # the image was scored and reported
    for text in (out, err):
        assert "<script>" not in text
        assert "alert(" not in text
        assert "onerror" not in text
        assert HOSTILE_NAME not in text
