"""`chexnet predict` as a user runs it: real DICOM, NIH PNG, a folder, JSON, CAM overlays."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image as PILImage

from chexnet.inference.cli.main import main
from chexnet.inference.package.hashing import sha256_file
from chexnet.inference.render.overlay import legend_height
from tests.tiny_model import build_tiny_package, tiny_card


def test_predict_text_on_j2k_dicom_and_nih_png(tiny_model, rg1_j2kr, nih_png, capsys):
    code = main(["predict", str(rg1_j2kr), str(nih_png), "--model", str(tiny_model)])
    out = capsys.readouterr().out
    assert code == 0
    assert "DEMO MODEL" in out
    assert "tiny-test-model" in out
    assert out.count("analysed") >= 2
    assert "Effusion" in out
    assert "[CR PA CHEST 1841x1955]" in out
    # 14 ranked rows per image
    rows = [ln for ln in out.splitlines() if re.match(r"^\s+\d+\s+\w+\s+[01]\.\d{3}\s", ln)]
    assert len(rows) == 28


def test_predict_json_is_complete_and_ranked(tiny_model, rg1_uncr, rg3_uncr, capsys):
    code = main(["predict", str(rg1_uncr), str(rg3_uncr), "--json", "--model", str(tiny_model)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["model"]["demo"] is True
    assert len(doc["model"]["sha256"]) == 64
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in doc["results"]}
    chest = by_name["RG1_UNCR.dcm"]
    probs = [f["probability"] for f in chest["findings"]]
    assert len(probs) == 14
    assert probs == sorted(probs, reverse=True)
    assert all(f["above_threshold"] == (f["probability"] >= f["threshold"])
               for f in chest["findings"])
    assert by_name["RG3_UNCR.dcm"]["status"] == "not_analysed"
    assert by_name["RG3_UNCR.dcm"]["findings"] == []


def test_predict_on_a_folder_study(tiny_model, rg1_uncr, rg1_j2kr, tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(rg1_uncr, study / "IM0001")  # no suffix: recognised by content
    shutil.copy(rg1_j2kr, study / "IM0002")
    code = main(["predict", str(study), "--json", "--model", str(tiny_model)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(doc["results"]) == 2
    a, b = doc["results"]
    assert [f["probability"] for f in a["findings"]] == [f["probability"] for f in b["findings"]]


def test_cam_png_shows_the_overlay_inside_the_crop_box(tiny_model, rg1_uncr, tmp_path, capsys):
    out_dir = tmp_path / "cams"
    code = main(["predict", str(rg1_uncr), "--model", str(tiny_model), "--cam-out",
                 str(out_dir), "--finding", "Effusion", "--threshold", "0.3",
                 "--opacity", "0.6"])
    assert code == 0
    png = out_dir / "RG1_UNCR_Effusion_cam.png"
    assert png.is_file()
    assert str(png) in capsys.readouterr().out
    picture = PILImage.open(png)
    assert picture.text["chexnet.sha256"] == sha256_file(tiny_model)
    assert picture.text["chexnet.finding"] == "Effusion"
    assert picture.text["chexnet.demo"] == "True"
    rgb = np.asarray(picture.convert("RGB")).astype(int)
    band = legend_height(3)  # model, heat map, DEMO
    legend, rgb = rgb[-band:], rgb[:-band]
    assert (legend < 60).mean() > 0.8  # a dark band with some light text
    assert (legend > 200).any()
    h, w, _ = rgb.shape
    assert max(h, w) == 1024
    colour = np.abs(rgb[..., 0] - rgb[..., 2]) > 30  # grey pixels have r == g == b
    top_margin = colour[: int(0.02 * h)]  # above the crop box: never coloured
    assert colour.mean() > 0.05
    assert top_margin[:, 100:-100].mean() < 0.01
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)
    assert yellow.any()  # the crop-box outline, since the tall image was cropped


def test_unknown_finding_and_bad_threshold_are_usage_errors(tiny_model, nih_png, capsys):
    assert main(["predict", str(nih_png), "--model", str(tiny_model), "--finding",
                 "Flu"]) == 2
    assert "not a label" in capsys.readouterr().err


def test_help_answers_questions():
    done = subprocess.run([sys.executable, "-m", "chexnet.inference.cli", "predict", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for needle in ("--cam-out", "--threshold", "--device", "examples:", "not analysed"):
        assert needle in done.stdout


def test_cam_names_never_collide(tiny_model, nih_png, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    shutil.copy(nih_png, tmp_path / "in" / "a b.png")
    shutil.copy(nih_png, tmp_path / "in" / "a_b.png")
    assert main(["predict", str(tmp_path / "in"), "--model", str(tiny_model), "--cam-out",
                 str(tmp_path / "cams"), "--finding", "Mass"]) == 0
    assert len(list((tmp_path / "cams").glob("*.png"))) == 2


def test_malformed_rescale_is_one_error_and_the_other_files_still_score(tiny_model, rg1_uncr,
                                                                         nih_png, tmp_path,
                                                                         capsys):
    import pydicom

    ds = pydicom.dcmread(rg1_uncr)
    ds.RescaleSlope = "7.25"
    ds.save_as(tmp_path / "bad.dcm")
    raw = (tmp_path / "bad.dcm").read_bytes()
    assert raw.count(b"7.25") == 1
    (tmp_path / "bad.dcm").write_bytes(raw.replace(b"7.25", b"abcd"))  # pydicom won't write it
    ds.RescaleSlope = 0
    ds.save_as(tmp_path / "zero.dcm")
    code = main(["predict", str(tmp_path / "bad.dcm"), str(tmp_path / "zero.dcm"), str(nih_png),
                 "--model", str(tiny_model), "--json"])
    out = capsys.readouterr()
    assert code == 1
    assert len(json.loads(out.out)["results"]) == 1
    assert "RescaleSlope is not a number" in out.err
    assert "RescaleSlope is 0" in out.err
    assert "Traceback" not in out.err


def test_finding_names_match_in_any_spelling(tiny_model, nih_png, tmp_path, capsys):
    """One label matcher: case, spaces and underscores do not matter (as in `chexnet eval`)."""
    assert main(["predict", str(nih_png), "--model", str(tiny_model), "--cam-out",
                 str(tmp_path), "--finding", "pleural thickening"]) == 0
    assert "CAM (Pleural_Thickening)" in capsys.readouterr().out
    assert (tmp_path / "00000075_000_Pleural_Thickening_cam.png").is_file()


def test_long_label_names_keep_the_table_aligned(tmp_path, nih_png, capsys):
    labels = ("A very long custom finding name", "Effusion")
    pkg = build_tiny_package(tmp_path / "long.onnx", card=tiny_card(labels=labels))
    assert main(["predict", str(nih_png), "--model", str(pkg)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if re.match(r"\s+\d+\s", line)]
    assert len(rows) == 2
    # the probability column ends at the same place on every row, however long the label
    ends = {len(re.match(r"(.*?\d\.\d{3})\s", row).group(1)) for row in rows}
    assert len(ends) == 1
