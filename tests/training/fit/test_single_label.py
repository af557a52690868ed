"""The hospital CAD paper's single-disease task and normal-vs-abnormal task, end to end:
selection of images carrying exactly one label, softmax in the exported graph of every backbone
(checked against the CAMs), card.task, chexnet eval's confusion matrix."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")

import torch

from chexnet.inference import Engine
from chexnet.inference.cli.main import main as chexnet
from chexnet.inference.io.study import load_image
from chexnet.inference.package.card import ModelCard
from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.training.cli import train as train_cli
from chexnet.training.data.dataset import load_dataset
from chexnet.training.data.labels import (
    NO_FINDING,
    read_label_file,
    select_labels,
    single_label,
    truth_for_model,
)
from chexnet.training.data.phantom import write_phantom_dataset
from chexnet.training.fit.cam_model import build_model
from chexnet.training.fit.run_folder import load_checkpoint
from chexnet.training.package.export import export_package

PH_LABELS = ("effusion", "cardiomegaly", "pneumothorax")


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _add_normal_column(src, dst):
    """The phantom CSV plus a ``normal`` column (1 where no lesion), as labels-from-reports
    writes it; one image is left with no label at all (a report naming nothing known)."""
    rows = _rows(src)
    unlabelled = [i for i, r in enumerate(rows) if all(r[lb] == "0" for lb in PH_LABELS)]
    for i, r in enumerate(rows):
        r["normal"] = "1" if i in unlabelled[1:] else "0"
    with open(dst, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def test_single_label_keeps_images_with_exactly_one_label(tmp_path):
    csv_path = write_phantom_dataset(tmp_path / "ph", 80, size=32, seed=3, labels=PH_LABELS)
    rows = _rows(csv_path)
    n_labels = [sum(int(r[lb]) for lb in PH_LABELS) for r in rows]
    table, summary = single_label(read_label_file(csv_path))
    # no normal column: images without a label are the class "No Finding" (NIH's name)
    assert table.labels == (*PH_LABELS, NO_FINDING)
    assert len(table) == summary["kept"] == sum(n <= 1 for n in n_labels)
    assert summary["left_out_multi_label"] == sum(n >= 2 for n in n_labels)
    assert (table.y.sum(axis=1) == 1).all()
    kept = [r for r, n in zip(rows, n_labels, strict=True) if n <= 1]
    assert table.ids == tuple(r["path"] for r in kept)
    for j, lb in enumerate(PH_LABELS):
        assert table.y[:, j].sum() == sum(int(r[lb]) for r in kept)
    assert table.y[:, 3].sum() == sum(n == 0 for n in n_labels)

    # with a normal column: it is a class; an image with no label at all carries no class
    rows = _add_normal_column(csv_path, tmp_path / "ph" / "with_normal.csv")
    table, summary = single_label(read_label_file(tmp_path / "ph" / "with_normal.csv"))
    assert table.labels == (*PH_LABELS, "normal")
    assert summary["left_out_unlabelled"] == 1
    assert table.y[:, 3].sum() == sum(r["normal"] == "1" for r in rows)


def test_nih_no_finding_becomes_a_class(tmp_path):
    entry = tmp_path / "Data_Entry_2017.csv"
    entry.write_text("Image Index,Finding Labels,Patient ID\n"
                     "a.png,No Finding,1\nb.png,Effusion,2\nc.png,Effusion|Mass,3\n"
                     "d.png,Mass,4\ne.png,No Finding,5\n", encoding="utf-8")
    table, _ = single_label(read_label_file(entry))
    assert table.ids == ("a.png", "b.png", "d.png", "e.png")
    # only classes with images remain: Effusion, Mass, No Finding
    assert table.labels == ("Effusion", "Mass", NO_FINDING)
    assert table.y.argmax(axis=1).tolist() == [2, 0, 1, 2]


def test_abnormal_is_not_normal_when_a_normal_column_exists(tmp_path):
    csv_path = write_phantom_dataset(tmp_path / "ph", 30, size=32, seed=1, labels=PH_LABELS)
    rows = _add_normal_column(csv_path, tmp_path / "n.csv")
    table = select_labels(read_label_file(tmp_path / "n.csv"), "abnormal")
    # the paper: "all cases except for those marked as normal" (the unlabelled one included)
    assert table.y[:, 0].tolist() == [0 if r["normal"] == "1" else 1 for r in rows]
    nih = select_labels(read_label_file(csv_path), "abnormal")  # no normal column: any finding
    assert nih.y[:, 0].tolist() == [int(any(r[lb] == "1" for lb in PH_LABELS))
                                    for r in _rows(csv_path)]
    truth = truth_for_model(read_label_file(csv_path), ("abnormal",), "multi-label")
    assert truth.labels[-1] == "abnormal"
    assert np.array_equal(truth.y[:, -1], nih.y[:, 0])


def test_multi_label_does_not_train_the_normal_column(tmp_path, capsys):
    """normal is the absence of findings: a multi-label model learns the findings only (single
    -label keeps it as a class of the softmax, as before); naming it in --labels is refused."""
    csv_path = write_phantom_dataset(tmp_path / "ph", 60, size=32, seed=5, labels=PH_LABELS)
    with_normal = tmp_path / "ph" / "with_normal.csv"
    _add_normal_column(csv_path, with_normal)
    assert "normal" in read_label_file(with_normal).labels
    assert load_dataset(with_normal).table.labels == PH_LABELS
    assert load_dataset(with_normal, task="single-label").table.labels[-1] == "normal"
    run = tmp_path / "run"
    assert train_cli.main([str(with_normal), "--out", str(run), "--size", "32", "--epochs", "1",
                           "--workers", "0", "--max-steps-per-epoch", "1"]) == 0
    assert tuple(load_checkpoint(run / "best.pt")["labels"]) == PH_LABELS
    assert json.loads((run / "run.json").read_text())["data"]["labels"] == list(PH_LABELS)
    capsys.readouterr()
    assert train_cli.main([str(with_normal), "--labels", "effusion,normal", "--out",
                           str(tmp_path / "r2"), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "names normal, the absence of findings, not a finding to learn" in err
    assert "--task single-label" in err


@pytest.mark.parametrize("arch", ["resnet101", "vgg16"])
def test_single_label_export_has_softmax_in_graph_and_cams(tmp_path, arch):
    torch.manual_seed(0)
    model = build_model(arch, 4, task="single-label").eval()
    labels = ("a", "b", "c", "normal")
    card = ModelCard(name="t", version="0", labels=labels, preprocess=PreprocessSpec(64, 64),
                     thresholds={}, arch=arch, task="single-label")
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
    export_package(model, card, tmp_path / "m.onnx", check_inputs=x)
    engine = Engine(tmp_path / "m.onnx", device="cpu")
    assert engine.card.task == "single-label"
    out = engine.run(x)
    assert out.probs.shape == (3, 4)
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    assert out.cams.shape[:2] == (3, 4)
    assert min(out.cams.shape[2:]) >= 2
    # independent of the graph: class score = spatial mean of its CAM + bias (Zhou et al.),
    # so softmax(mean CAM + b) must be the package's probabilities
    bias = model.classifier.bias.detach().numpy()
    logits = out.cams.mean(axis=(2, 3)) + bias
    soft = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out.probs, soft / soft.sum(axis=1, keepdims=True), atol=1e-4)


def test_single_label_train_export_eval(tmp_path, capsys):
    csv_path = write_phantom_dataset(tmp_path / "ph", 90, size=64, seed=0, labels=PH_LABELS)
    run = tmp_path / "run"
    assert train_cli.main([str(csv_path), "--out", str(run), "--size", "64", "--epochs", "1",
                           "--workers", "0", "--task", "single-label", "--min-per-class", "20",
                           "--max-steps-per-epoch", "3", "--seed", "0"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["task"] == "single-label"
    package = tmp_path / "single.onnx"
    assert chexnet(["export", str(run), "--out", str(package)]) == 0
    card = Engine(package, device="cpu").card
    assert card.task == "single-label"
    assert card.labels == (*PH_LABELS, NO_FINDING)
    assert "most probable" in card.threshold_rule
    pred = Engine(package, device="cpu").predict(
        [load_image(tmp_path / "ph" / "images" / "phantom_00000.png")])[0]
    assert pred.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert pred.ranked[0].probability == pytest.approx(pred.probabilities.max())
    out = tmp_path / "eval"
    capsys.readouterr()
    assert chexnet(["eval", "--model", str(package), "--data", str(tmp_path / "ph"),
                    "--labels", str(csv_path), "--images", str(run / "splits" / "test_list.txt"),
                    "--bootstrap", "0", "--out", str(out)]) == 0
    assert "single-label: accuracy" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    conf = m["confusion"]
    assert m["task"] == conf["kind"] == "single-label"
    matrix = np.array(conf["matrix"])
    test_ids = (run / "splits" / "test_list.txt").read_text().split()
    assert matrix.shape == (4, 4)
    assert matrix.sum() == conf["n_images"] == m["n_images"] == len(test_ids)
    # rows = true class: an independent count from the CSV
    truth = {r["path"]: r for r in _rows(csv_path)}
    for i, lb in enumerate(PH_LABELS):
        assert matrix[i].sum() == sum(truth[t][lb] == "1" for t in test_ids)
    # columns = argmax of the scores eval wrote
    with open(out / "predictions.csv", newline="", encoding="utf-8") as fh:
        preds = list(csv.DictReader(fh))
    cols = [c for c in preds[0] if c.lower().replace(" ", "_") in
            {lb.lower().replace(" ", "_") for lb in card.labels}]
    argmax = np.bincount([int(np.argmax([float(p[c]) for c in cols])) for p in preds],
                         minlength=4)
    assert matrix.sum(axis=0).tolist() == argmax.tolist()
    assert (out / "confusion.png").stat().st_size > 1000
    assert "## Confusion matrix" in (out / "report.md").read_text()


def test_abnormal_task_trains_exports_and_evaluates(tmp_path):
    csv_path = write_phantom_dataset(tmp_path / "ph", 60, size=64, seed=2, labels=PH_LABELS)
    _add_normal_column(csv_path, tmp_path / "ph" / "n.csv")
    run = tmp_path / "run"
    assert train_cli.main([str(tmp_path / "ph" / "n.csv"), "--out", str(run), "--size", "32",
                           "--epochs", "1", "--workers", "0", "--labels", "abnormal",
                           "--max-steps-per-epoch", "2"]) == 0
    package = tmp_path / "abn.onnx"
    assert chexnet(["export", str(run), "--out", str(package)]) == 0
    assert Engine(package, device="cpu").card.labels == ("abnormal",)
    out = tmp_path / "eval"
    assert chexnet(["eval", "--model", str(package), "--data", str(tmp_path / "ph"),
                    "--labels", str(tmp_path / "ph" / "n.csv"), "--bootstrap", "0",
                    "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert list(m["per_class"]) == ["abnormal"]
    rows = _rows(tmp_path / "ph" / "n.csv")
    assert m["per_class"]["abnormal"]["n_positive"] == sum(r["normal"] == "0" for r in rows)
    tn_fp, fn_tp = m["confusion"]["per_label"]["abnormal"]
    assert sum(tn_fp) + sum(fn_tp) == len(rows)
    assert sum(fn_tp) == m["per_class"]["abnormal"]["n_positive"]
