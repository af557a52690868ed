"""``chexnet eval`` end to end: predictions CSVs, a model run on real NIH images, errors."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from chexnet.inference.cli.main import main
from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.training.evaluation.markdown import md_escape
from tests.tiny_model import build_tiny_package, tiny_card
from tests.training.helpers import write_csv


def _eval(*args: str) -> int:
    return main(["eval", *args])


@pytest.fixture
def small_set(tmp_path) -> tuple[Path, Path]:
    """A generic label CSV (path, patient_id, two labels) and predictions for it, with one
    image only in each file and the label spelled differently in the two."""
    rng = np.random.default_rng(0)
    names = [f"img{i:02d}.png" for i in range(40)]
    y = rng.random((40, 2)) < 0.4
    probs = np.clip(y * 0.3 + rng.random((40, 2)) * 0.7, 0, 1)
    labels = write_csv(tmp_path / "labels.csv",
                       [["path", "patient_id", "Pleural_Thickening", "Mass"]]
                       + [[n, f"p{i // 2}", int(a), int(b)] for i, (n, (a, b))
                          in enumerate(zip(names, y, strict=True))]
                       + [["only_labelled.png", "px", 1, 0]])
    preds = write_csv(tmp_path / "preds.csv",
                      [["Image Index", "Mass", "Pleural Thickening"]]
                      + [[n, f"{b:.6f}", f"{a:.6f}"]
                         for n, (a, b) in zip(names, probs, strict=True)]
                      + [["only_predicted.png", "0.5", "0.5"]])
    return labels, preds


def test_predictions_csv_with_dropped_images_said_and_labels_normalised(small_set, tmp_path,
                                                                        capsys):
    labels, preds = small_set
    out = tmp_path / "out"
    assert _eval("--predictions", str(preds), "--labels", str(labels), "--out", str(out),
                 "--bootstrap", "200") == 0
    stdout = capsys.readouterr().out
    assert "1 predicted image(s) are not in the label file" in stdout
    assert "1 labelled image(s) have no prediction" in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert (m["n_images"], m["n_patients"]) == (40, 20)
    assert set(m["per_class"]) == {"Pleural_Thickening", "Mass"}
    assert m["dropped"]["predictions_without_labels_examples"] == ["only_predicted.png"]
    assert m["dropped"]["labels_without_predictions_examples"] == ["only_labelled.png"]
    with open(labels) as fh:
        truth = {r["path"]: r for r in csv.DictReader(fh)}
    with open(preds) as fh:
        rows = [r for r in csv.DictReader(fh) if r["Image Index"] in truth]
    auc = roc_auc_score([int(truth[r["Image Index"]]["Pleural_Thickening"]) for r in rows],
                        [float(r["Pleural Thickening"]) for r in rows])
    assert m["per_class"]["Pleural_Thickening"]["auroc"] == pytest.approx(auc, abs=1e-12)
    assert m["per_class"]["Mass"]["threshold"] == 0.5
    assert "Left out" in (out / "report.md").read_text()


def test_thresholds_option_and_card(small_set, tmp_path):
    labels, preds = small_set
    out = tmp_path / "out"
    assert _eval("--predictions", str(preds), "--labels", str(labels), "--out", str(out),
                 "--bootstrap", "0", "--thresholds", "0.3") == 0
    m = json.loads((out / "metrics.json").read_text())
    assert {e["threshold"] for e in m["per_class"].values()} == {0.3}
    assert m["per_class"]["Mass"]["auroc_ci"] is None
    card = tiny_card(thresholds={"Mass": 0.25, "Pleural_Thickening": 0.75})
    package = build_tiny_package(tmp_path / "card.onnx", card=card)
    assert _eval("--predictions", str(preds), "--labels", str(labels), "--out", str(out),
                 "--bootstrap", "0", "--thresholds-from", str(package)) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["per_class"]["Mass"]["threshold"] == 0.25
    assert m["per_class"]["Pleural_Thickening"]["threshold"] == 0.75
    assert "tiny-test-model" in m["thresholds_source"]


def test_report_escapes_markup_from_files(tmp_path):
    evil = "<img src=x onerror=alert(1)>|&[link](http://x)"
    labels = write_csv(tmp_path / "labels.csv", [["path", evil], ["a.png", 1], ["b.png", 0],
                                                 ["c.png", 1]])
    preds = write_csv(tmp_path / "preds.csv", [["Image Index", evil], ["a.png", 0.9],
                                               ["b.png", 0.1], ["c.png", 0.2], ["<b>x</b>", 0.3]])
    out = tmp_path / "out"
    assert _eval("--predictions", str(preds), "--labels", str(labels), "--out", str(out),
                 "--bootstrap", "20") == 0
    report = (out / "report.md").read_text()
    assert not re.search(r"<img|<b>|\[link\]\(http", report)
    assert r"&lt;img src=x onerror=alert(1)&gt;&#124;&amp;\[link\](http://x)" in report
    columns = 0
    for line in report.splitlines():  # the label cell did not split its table rows
        if line.startswith("| Finding"):
            columns = line.count("|")
        elif line.startswith("| &lt;img"):
            assert line.count("|") == columns
    assert md_escape("a|b<c>&d") == "a&#124;b&lt;c&gt;&amp;d"


@pytest.mark.parametrize(("args", "words"), [
    (["--predictions", "P", "--model", "M"], "not both"),
    (["--predictions", "P", "--data", "."], "--data is for running a model"),
    (["--predictions", "P", "--panel", "1,2"], "--panel needs --readers"),
    (["--predictions", "P", "--bbox", "B"], "--bbox needs a model run"),
    (["--predictions", "P", "--thresholds", "card"], "--thresholds card needs"),
])
def test_usage_errors_are_one_line_exit_2(args, words, tmp_path, capsys):
    rc = _eval("--labels", "L.csv", "--out", str(tmp_path), *args)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert words in err


def test_bad_files_are_one_line_naming_the_file(small_set, tmp_path, capsys):
    labels, _ = small_set
    bad = write_csv(tmp_path / "bad_preds.csv", [["Image Index", "Mass"], ["img00.png", "3.2"]])
    assert _eval("--predictions", str(bad), "--labels", str(labels), "--out",
                 str(tmp_path / "o")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad_preds.csv: line 2: probabilities must lie in [0, 1]" in err
    no_id = write_csv(tmp_path / "no_id.csv", [["name", "Mass"], ["img00.png", "0.2"]])
    assert _eval("--predictions", str(no_id), "--labels", str(labels), "--out",
                 str(tmp_path / "o")) == 2
    assert "no_id.csv: no 'Image Index' column" in capsys.readouterr().err
    readers = write_csv(tmp_path / "reads.csv", [["Image ID", "Patient ID", "Reader ID", "Mass"],
                                                 ["img00.png", "1", "r1", "YES"]])
    assert _eval("--predictions", str(no_id), "--labels", str(readers), "--out",
                 str(tmp_path / "o")) == 2
    assert "pass it with --readers" in capsys.readouterr().err
    assert _eval("--predictions", str(tmp_path / "missing.csv"), "--labels", str(labels),
                 "--out", str(tmp_path / "o")) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as done:
        main(["eval", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert all(word in text for word in ("examples:", "--readers", "--panel"))


# --- real NIH images and labels --------------------------------------------------------------

def test_real_sample_predictions_mean_auroc(nih_sample, tmp_path):
    out = tmp_path / "out"
    assert _eval("--predictions", str(nih_sample / "reference_predictions.csv"),
                 "--labels", str(nih_sample / "Data_Entry_2017.csv"), "--out", str(out)) == 0
    m = json.loads((out / "metrics.json").read_text())
    with open(nih_sample / "Data_Entry_2017.csv") as fh:
        truth = {r["Image Index"]: r["Finding Labels"].split("|") for r in csv.DictReader(fh)}
    with open(nih_sample / "reference_predictions.csv") as fh:
        preds = list(csv.DictReader(fh))
    aucs = [roc_auc_score([label in truth[p["Image Index"]] for p in preds],
                          [float(p[label]) for p in preds]) for label in CHESTXRAY14_LABELS]
    assert (m["n_images"], m["n_patients"]) == (420, 420)
    assert m["mean_auroc"] == pytest.approx(np.mean(aucs), abs=1e-6)
    assert m["mean_auroc_excluded"] == {}
    assert m["bootstrap"]["n_resamples"] == 1000
    for entry in m["per_class"].values():
        lo, hi = entry["auroc_ci"]
        assert lo < entry["auroc"] < hi
    assert 0 < m["per_image_average_precision"] <= 1
    assert 0 < m["top3_sensitivity"]["overall"] <= 1
    assert m["abnormal_auroc"] is not None


def test_images_list_restricts_the_evaluation(nih_sample, tmp_path):
    names = (nih_sample / "test_list.txt").read_text().split()[:50]
    (tmp_path / "list.txt").write_text("\n".join([*names, "99999999_000.png"]) + "\n")
    out = tmp_path / "out"
    assert _eval("--predictions", str(nih_sample / "reference_predictions.csv"),
                 "--labels", str(nih_sample / "Data_Entry_2017.csv"), "--images",
                 str(tmp_path / "list.txt"), "--bootstrap", "0", "--out", str(out)) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 50
    report = (out / "report.md").read_text()
    assert "restricted to the 50 labelled image(s)" in report
    assert "1 listed name" in report


def test_model_run_on_real_images_with_boxes(nih_sample, tiny_model, tmp_path, capsys):
    with open(nih_sample / "BBox_List_2017.csv") as fh:
        boxed = sorted({r[0] for r in list(csv.reader(fh))[1:]})
    with open(nih_sample / "Data_Entry_2017.csv") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    chosen = [r for r in body if r[0] in boxed] + [r for r in body if r[0] not in boxed][:5]
    data = tmp_path / "images" / "sub"
    data.mkdir(parents=True)
    for r in chosen:
        (data / r[0]).symlink_to(nih_sample / "images" / r[0])
    absent = [["99999999_000.png", "Mass", "0", "99999999"]]
    labels = write_csv(tmp_path / "labels.csv", [header, *chosen, *absent])
    out = tmp_path / "out"
    rc = _eval("--model", str(tiny_model), "--data", str(tmp_path / "images"), "--labels",
               str(labels), "--bbox", str(nih_sample / "BBox_List_2017.csv"), "--out", str(out),
               "--device", "cpu", "--bootstrap", "100")
    assert rc == 0
    assert "1 have no file under --data" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == len(chosen) == 12
    assert m["inputs"]["model"]["name"] == "tiny-test-model"
    assert "tiny-test-model" in m["thresholds_source"]
    assert len(m["per_class"]) == 14
    pg = m["pointing_game"]
    assert pg["n_boxes"] == 7
    assert pg["skipped_boxes"]["image_not_evaluated"] == 0
    assert {"Cardiomegaly", "Mass", "Nodule"} <= set(pg["per_class"])
    assert pg["per_class"]["Cardiomegaly"]["n_boxes"] == 3
    assert 0.0 <= pg["hit_rate"] <= 1.0
    with open(out / "predictions.csv") as fh:
        written = list(csv.DictReader(fh))
    assert len(written) == 12
    assert "Pleural_Thickening" in written[0]
    sha = m["inputs"]["model"]["sha256"]
    assert {(r["model_sha256"], r["model_demo"]) for r in written} == {(sha, "true")}
    report = (out / "report.md").read_text()
    assert "DEMO model" in report
    assert "pointing game" in report
    assert "lies inside the radiologist's box. Overall" in report  # no tolerance: no "within"
    # the written predictions evaluate to the same AUROCs, and say which model made them
    again = tmp_path / "again"
    assert _eval("--predictions", str(out / "predictions.csv"), "--labels", str(labels),
                 "--out", str(again), "--bootstrap", "0") == 0
    m2 = json.loads((again / "metrics.json").read_text())
    assert m2["mean_auroc"] == pytest.approx(m["mean_auroc"], abs=1e-5)
    assert m2["labels"] == m["labels"]  # model_sha256 / model_demo are not labels
    assert m2["inputs"]["predictions_model"] == {"sha256": [sha], "demo": True}
    assert (f"- Predictions made by: model sha256 {sha[:12]} — **DEMO model"
            in (again / "report.md").read_text())
    # --pointing-tolerance: the report's rule says it
    wide = tmp_path / "wide"
    assert _eval("--model", str(tiny_model), "--data", str(tmp_path / "images"), "--labels",
                 str(labels), "--bbox", str(nih_sample / "BBox_List_2017.csv"), "--out",
                 str(wide), "--device", "cpu", "--bootstrap", "0",
                 "--pointing-tolerance", "15") == 0
    assert ("lies inside the radiologist's box or within 15 px of it. Overall"
            in (wide / "report.md").read_text())


def test_model_run_from_a_generic_csv_of_paths(nih_sample, tiny_model, tmp_path, capsys):
    names = ["00000075_000.png", "00000100_000.png", "00000129_000.png", "00000211_000.png"]
    labels = write_csv(tmp_path / "paths.csv", [["path", "patient_id", "Effusion"]] + [
        [str(nih_sample / "images" / n), f"p{k // 2}", k % 2] for k, n in enumerate(names)])
    out = tmp_path / "out"
    assert _eval("--model", str(tiny_model), "--labels", str(labels), "--out", str(out),
                 "--device", "cpu", "--bootstrap", "50", "--thresholds", "0.4") == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (m["n_images"], m["n_patients"], m["labels"]) == (4, 2, ["Effusion"])
    assert m["per_class"]["Effusion"]["threshold"] == 0.4
    assert "predicted label(s) without truth" in capsys.readouterr().out
    nih = write_csv(tmp_path / "nih.csv", [["Image Index", "Finding Labels", "Patient ID"],
                                           [names[0], "Mass", "75"]])
    assert _eval("--model", str(tiny_model), "--labels", str(nih), "--out", str(out)) == 2
    assert "nih.csv: names images but gives no paths" in capsys.readouterr().err


def test_eval_needs_no_torch():
    code = ("import sys; import chexnet.training.cli.eval, chexnet.training.evaluation.evaluate, "
            "chexnet.training.evaluation.outputs; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
