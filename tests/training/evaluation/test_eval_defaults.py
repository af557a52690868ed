"""``chexnet eval`` as a new user meets it: the default model and label file, labels kept as
named, the published CheXNet figures only where they apply, normal never a finding."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from chexnet.inference.cli.main import main
from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.inference.package.lookup import DEFAULT_MODEL_FILE, bundled_models_dir
from tests.tiny_model import build_tiny_package
from tests.training.helpers import write_csv

N_IMAGES = 6


@pytest.fixture
def nih_folder(nih_sample, tmp_path) -> Path:
    """An NIH release folder in miniature: images/ and its Data_Entry_2017.csv."""
    folder = tmp_path / "ChestX-ray14"
    (folder / "images").mkdir(parents=True)
    with open(nih_sample / "Data_Entry_2017.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    for row in rows[1:N_IMAGES + 1]:
        (folder / "images" / row[0]).symlink_to(nih_sample / "images" / row[0])
    write_csv(folder / "Data_Entry_2017.csv", rows[:N_IMAGES + 1])
    return folder


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_no_model_and_no_labels_runs_the_default_model_on_the_folders_label_file(
        nih_folder, tmp_path, capsys):
    if not (bundled_models_dir() / DEFAULT_MODEL_FILE).is_file():
        pytest.skip("no bundled default model in this checkout")
    out = tmp_path / "bundled"
    assert main(["eval", "--data", str(nih_folder), "--out", str(out), "--bootstrap", "0",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    entry = nih_folder / "Data_Entry_2017.csv"
    assert f"labels: {entry} (found in --data; --labels CSV to use another file)" in printed
    assert "the bundled default model (no --model given)" in printed
    m = _metrics(out)
    assert m["n_images"] == N_IMAGES
    assert m["inputs"]["labels"] == str(entry)
    assert m["inputs"]["model"]["chosen_by"] == "bundled default"
    assert Path(m["inputs"]["model"]["path"]).name == DEFAULT_MODEL_FILE
    report = (out / "report.md").read_text()
    assert "the bundled default model (no --model given)" in report
    assert f"{entry} (found in the --data folder)" in report

    # the user's default wins over the bundled one, and is named as such
    tiny = build_tiny_package(tmp_path / "tiny.onnx")
    assert main(["models", "add", str(tiny), "--name", "tiny"]) == 0
    assert main(["models", "default", "tiny"]) == 0
    capsys.readouterr()
    out = tmp_path / "user"
    assert main(["eval", "--data", str(nih_folder), "--out", str(out), "--bootstrap", "0",
                 "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "model: tiny-test-model 0.0.1" in printed
    assert "your default model (no --model given; `chexnet models default`)" in printed
    assert _metrics(out)["inputs"]["model"]["chosen_by"] == "user default"


def test_labels_default_needs_a_data_entry_file(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    assert main(["eval", "--data", str(tmp_path / "images"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"--data {tmp_path / 'images'}: no Data_Entry_2017*.csv or labels.csv "
                        "in it to take the labels from; give --labels CSV")
    assert main(["eval", "--out", str(tmp_path / "o")]) == 2
    assert "give --labels CSV (the truth), or --data DIR" in capsys.readouterr().err


def _labels_and_predictions(folder: Path, names: list[str], labels: list[str], y, probs):
    truth = write_csv(folder / "truth.csv", [["path", "patient_id", *labels]] + [
        [n, f"p{i}", *map(int, row)] for i, (n, row) in enumerate(zip(names, y, strict=True))])
    preds = write_csv(folder / "preds.csv", [["Image Index", *labels]] + [
        [n, *(f"{v:.4f}" for v in row)] for n, row in zip(names, probs, strict=True)])
    return truth, preds


def test_custom_labels_keep_their_names_and_get_no_published_comparison(tmp_path, capsys):
    rng = np.random.default_rng(1)
    names = [f"case{i:03d}.png" for i in range(30)]
    y = rng.random((30, 2)) < 0.4
    probs = np.clip(0.4 * y + 0.6 * rng.random((30, 2)), 0, 1)
    truth, preds = _labels_and_predictions(tmp_path, names, ["pleural effusion", "Nodule"], y,
                                           probs)
    out = tmp_path / "out"
    assert main(["eval", "--predictions", str(preds), "--labels", str(truth), "--out", str(out),
                 "--bootstrap", "0"]) == 0
    m = _metrics(out)
    assert list(m["per_class"]) == ["pleural effusion", "Nodule"]  # not renamed to "Effusion"
    assert m["published_comparison"]["made"] is False
    assert "not the 14 ChestX-ray14 findings" in m["published_comparison"]["reason"]
    assert all(e["published_chexnet_auroc"] is None for e in m["per_class"].values())
    report = (out / "report.md").read_text()
    assert "Effusion" not in report.replace("pleural effusion", "")
    assert "No comparison with the published CheXNet AUROCs: the model's labels are not" in report
    assert "indicative only" not in report
    assert "CheXNet (paper)" not in report
    # another spelling in the label file still matches; outputs use the model's names
    respelled = write_csv(tmp_path / "respelled.csv", [
        ["path", "patient_id", "Pleural-Effusion", "nodule"],
        *([n, f"p{i}", *map(int, row)] for i, (n, row) in enumerate(zip(names, y, strict=True)))])
    again = tmp_path / "again"
    assert main(["eval", "--predictions", str(preds), "--labels", str(respelled), "--out",
                 str(again), "--bootstrap", "0"]) == 0
    m2 = _metrics(again)
    assert list(m2["per_class"]) == ["pleural effusion", "Nodule"]
    assert m2["mean_auroc"] == pytest.approx(m["mean_auroc"])


def test_published_comparison_needs_nih_labels_and_images(nih_sample, tmp_path):
    # ChestX-ray14 labels, but the truth is a generic CSV: no comparison, and why
    with open(nih_sample / "Data_Entry_2017.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:40]
    y = np.array([[lb in r["Finding Labels"].split("|") for lb in CHESTXRAY14_LABELS]
                  for r in rows])
    probs = np.random.default_rng(0).random(y.shape)
    names = [r["Image Index"] for r in rows]
    truth, preds = _labels_and_predictions(tmp_path, names, list(CHESTXRAY14_LABELS), y, probs)
    out = tmp_path / "generic"
    assert main(["eval", "--predictions", str(preds), "--labels", str(truth), "--out", str(out),
                 "--bootstrap", "0"]) == 0
    comp = _metrics(out)["published_comparison"]
    assert (comp["made"], comp["reason"]) == (False, "the labels are not NIH ChestX-ray14's "
                                              "(--labels is neither a Data_Entry_2017 file nor "
                                              "the NIH expert labels)")
    # an NIH-layout label file of images that are not NIH's
    entry = write_csv(tmp_path / "Data_Entry_2017.csv",
                      [["Image Index", "Finding Labels", "Patient ID"]]
                      + [[f"hospital_{i}.png", r["Finding Labels"], str(i)]
                         for i, r in enumerate(rows)])
    renamed = write_csv(tmp_path / "renamed.csv", [["Image Index", *CHESTXRAY14_LABELS]] + [
        [f"hospital_{i}.png", *row] for i, row in enumerate(probs)])
    out = tmp_path / "hospital"
    assert main(["eval", "--predictions", str(renamed), "--labels", str(entry), "--out",
                 str(out), "--bootstrap", "0"]) == 0
    comp = _metrics(out)["published_comparison"]
    assert comp["made"] is False
    assert "the images are not NIH ChestX-ray14's (hospital_0.png" in comp["reason"]
    # the NIH sample, its labels and a ChestX-ray14 model: the comparison is made
    out = tmp_path / "nih"
    assert main(["eval", "--predictions", str(nih_sample / "reference_predictions.csv"),
                 "--labels", str(nih_sample / "Data_Entry_2017.csv"), "--out", str(out),
                 "--bootstrap", "0"]) == 0
    m = _metrics(out)
    assert m["published_comparison"]["made"] is True
    assert m["per_class"]["Effusion"]["published_chexnet_auroc"] == 0.8638
    assert "indicative only" in (out / "report.md").read_text()


def test_normal_is_not_a_finding_in_ranking_or_the_abnormal_score(tmp_path):
    """Hand example: a `normal` column (truth and prediction) must not be ranked among the
    findings, count as a finding, or make an image abnormal."""
    labels = ["effusion", "nodule", "normal"]
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]])
    probs = np.array([[0.6, 0.7, 0.9], [0.8, 0.3, 0.1], [0.2, 0.1, 0.95], [0.4, 0.5, 0.6]])
    names = [f"img{i}.png" for i in range(4)]
    truth, preds = _labels_and_predictions(tmp_path, names, labels, y, probs)
    out = tmp_path / "out"
    assert main(["eval", "--predictions", str(preds), "--labels", str(truth), "--out", str(out),
                 "--bootstrap", "0"]) == 0
    m = _metrics(out)
    # img0: nodule ranks 1, effusion 2 -> AP 1/2; img1: both findings on top -> AP 1;
    # img2 and img3 have no finding (normal is not one): left out
    assert m["per_image_average_precision_n_images"] == 2
    assert m["per_image_average_precision"] == pytest.approx(0.75)
    assert m["per_image_average_precision_multi_label"] == pytest.approx(1.0)
    assert m["n_abnormal"] == 2
    assert m["abnormal_auroc"] == pytest.approx(1.0)  # max finding prob .7, .8 vs .2, .5
    assert m["per_class"]["normal"]["top3_sensitivity"] is None
    assert m["per_class"]["normal"]["auroc"] is not None  # still scored as an output
    assert "not a finding" in m["abnormal_definition"]


def test_a_generic_labels_csv_in_the_data_folder_is_found(tmp_path):
    """A site's labels (or the viewer's exported feedback) saved as labels.csv beside the
    images: eval and tune take it when --labels is not given; an NIH file comes first."""
    from chexnet.training.evaluation.inputs import find_label_file

    (tmp_path / "labels.csv").write_text("path,Effusion\na.png,1\n")
    assert find_label_file(tmp_path)[0] == tmp_path / "labels.csv"
    (tmp_path / "Data_Entry_2017.csv").write_text("Image Index,Finding Labels\n")
    found, candidates = find_label_file(tmp_path)
    assert found == tmp_path / "Data_Entry_2017.csv"
    assert tmp_path / "labels.csv" in candidates
