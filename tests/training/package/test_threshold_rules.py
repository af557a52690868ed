"""Export records per class the threshold rule actually used (max F1 on validation, or 0.5 where
the validation split has no positive), the card's summary counts the fallbacks, and
``chexnet export`` / ``chexnet eval`` show them. On a real run of the NIH sample, whose
validation split lacks some findings."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.inference import Engine
from chexnet.inference.cli.main import main
from chexnet.training.cli import train as train_cli
from chexnet.training.fit.run_folder import RunFolder
from chexnet.training.package.export_run import threshold_rules

FALLBACK = "0.5: no positives in the validation split"


@pytest.fixture(scope="module")
def run(nih_sample, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules")
    assert train_cli.main([str(nih_sample), "--out", str(tmp / "run"), "--size", "32",
                           "--epochs", "1", "--workers", "0", "--cache-dir", str(tmp / "cache"),
                           "--max-steps-per-epoch", "1"]) == 0
    return tmp / "run"


def test_card_and_export_say_which_classes_kept_0_5(run, tmp_path, capsys):
    package = tmp_path / "m.onnx"
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(package)]) == 0
    printed = capsys.readouterr().out
    val = RunFolder(run).load_val_predictions()
    card = Engine(package, device="cpu").card
    empty = [lb for j, lb in enumerate(card.labels) if val["y"][:, j].sum() == 0]
    assert empty, "the sample's validation split (seed 0) lacks some findings"
    rules = card.extra["threshold_rules"]
    assert set(rules) == set(card.labels)
    for label in card.labels:
        if label in empty:
            assert (rules[label], card.threshold(label)) == (FALLBACK, 0.5)
            line = next(ln for ln in printed.splitlines() if ln.strip().startswith(label))
            assert line.endswith(f"(threshold {FALLBACK})")
        else:
            assert rules[label] == "max F1 on validation"
    summary = (f"{len(empty)} of 14 classes keep 0.5, no positives in the validation split "
               f"({', '.join(empty)})")
    assert summary in card.threshold_rule
    assert f"thresholds: {card.threshold_rule}" in printed

    out = tmp_path / "eval"
    nih = RunFolder(run).info["data_path"]
    assert main(["eval", "--model", str(package), "--data", nih, "--images",
                 str(run / "splits" / "test_list.txt"), "--bootstrap", "0", "--device", "cpu",
                 "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for label in card.labels:
        assert m["per_class"][label]["threshold_rule"] == rules[label]
    report = (out / "report.md").read_text()
    assert summary in report  # the Thresholds line quotes the card's rule
    assert f"| {empty[0]} | 0.500 | {FALLBACK} |" in report


def test_rules_for_youden_and_a_clean_split():
    y = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1]])
    rules, summary = threshold_rules(y, "youden", ("a", "b", "c"), "rule")
    assert rules == {"a": "max Youden's J on validation",
                     "b": "0.5: no positives in the validation split",
                     "c": "0.5: no negatives in the validation split"}
    assert summary == ("rule; 1 of 3 classes keep 0.5, no positives in the validation split (b)"
                       "; 1 of 3 classes keep 0.5, no negatives in the validation split (c)")
    assert threshold_rules(y[:, :1], "max_f1", ("a",), "rule") == (
        {"a": "max F1 on validation"}, "rule")
