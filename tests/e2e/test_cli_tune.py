"""``chexnet tune`` as a site uses it: labelled local images in, a new package version out that
``chexnet models add`` accepts and whose card says the rule, the sample and what it measured;
classes under --min-positives keep the source threshold (issue 14)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from chexnet.inference import Engine
from chexnet.inference.cli.main import main
from chexnet.inference.package.card_markdown import card_markdown
from chexnet.inference.package.verify import open_package
from chexnet.training.data.phantom import PHANTOM_LABELS, write_phantom_dataset
from chexnet.training.evaluation.calibration import apply_platt
from tests.tiny_model import build_tiny_package, tiny_card

SOURCE = {"nodule": 0.41, "mass": 0.42, "effusion": 0.43, "pneumothorax": 0.44,
          "cardiomegaly": 0.45}


@pytest.fixture(autouse=True)
def chexnet_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site folder (phantom chests + labels.csv) and a tiny model of the phantom labels."""
    root = tmp_path_factory.mktemp("site")
    labels = write_phantom_dataset(root / "site", 48, size=64, seed=3, images_per_patient=2,
                                   p_lesion=0.2)
    card = tiny_card(labels=PHANTOM_LABELS, thresholds=SOURCE, threshold_rule="fixed (test)")
    return labels, build_tiny_package(root / "tiny.onnx", card=card, seed=2)


def test_tune_writes_a_package_that_models_add_accepts(site, tmp_path, capsys):
    labels, model = site
    out = tmp_path / "site.onnx"
    assert main(["tune", "--model", str(model), "--data", str(labels.parent), "--rule",
                 "sensitivity=0.8", "--min-positives", "8", "--calibrate", "--out", str(out),
                 "--device", "cpu", "--bootstrap", "100"]) == 0
    printed = capsys.readouterr().out
    assert f"labels: {labels} (found in --data)" in printed
    card = open_package(out).card
    site_entry = card.extra["site_tuning"]
    assert card.version.startswith("0.0.1+site.")
    assert card.threshold_rule.startswith("site-tuned ")
    assert "sensitivity=0.8 on 48 local images" in card.threshold_rule
    assert site_entry["sample"]["labels_sha256"] == hashlib.sha256(labels.read_bytes()
                                                                   ).hexdigest()
    assert site_entry["sample"]["n_images"] == 48
    assert site_entry["sample"]["n_patients"] == 24
    truth = np.loadtxt(labels, delimiter=",", skiprows=1, usecols=range(2, 7))
    small = [lb for j, lb in enumerate(PHANTOM_LABELS) if truth[:, j].sum() < 8]
    assert small, "the phantom sample should have a class under --min-positives"
    assert site_entry["kept_source_threshold"] == small
    for label in PHANTOM_LABELS:
        entry = site_entry["classes"][label]
        if label in small:
            assert card.thresholds[label] == SOURCE[label]
            assert "fewer than --min-positives 8" in card.extra["threshold_rules"][label]
            assert not card.extra["calibration"]["classes"][label]["fitted"]
        else:
            assert entry["sensitivity"] >= 0.8
            assert len(entry["sensitivity_ci"]) == 2
            assert card.extra["threshold_rules"][label].startswith("sensitivity=0.8 on the site")
    assert ", ".join(small) in card.threshold_rule
    markdown = card_markdown(card, "0" * 64, out.name)  # the model card shows what was tuned
    assert "## Site tuning" in markdown
    assert f"sha256 `{site_entry['sample']['labels_sha256']}`" in markdown
    for label in PHANTOM_LABELS:
        if label not in small:
            assert f"| {label} | {card.thresholds[label]:.3f} |" in markdown

    # models add accepts it, and predict shows the rule beside the model
    assert main(["models", "add", str(out), "--name", "site"]) == 0
    capsys.readouterr()
    image = next((labels.parent / "images").glob("*.png"))
    assert main(["predict", "--model", "site", "--device", "cpu", str(image)]) == 0
    assert "thresholds: site-tuned " in capsys.readouterr().out

    # the graph's probs are the numpy calibration of the source's
    cal = card.extra["calibration"]["classes"]
    a = np.array([cal[lb]["a"] for lb in card.labels])
    b = np.array([cal[lb]["b"] for lb in card.labels])
    x = np.random.default_rng(1).normal(size=(3, 3, 224, 224)).astype(np.float32)
    old, new = Engine(model, device="cpu").run(x), Engine(out, device="cpu").run(x)
    assert np.max(np.abs(new.probs - apply_platt(old.probs, a, b))) < 1e-5
    np.testing.assert_array_equal(new.cams, old.cams)


def test_per_class_rules_and_usage_errors(site, tmp_path, capsys):
    labels, model = site
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"Effusion": "specificity=0.9"}))
    out = tmp_path / "s.onnx"
    assert main(["tune", "--model", str(model), "--data", str(labels.parent), "--rule", "youden",
                 "--per-class", str(rules), "--out", str(out), "--device", "cpu",
                 "--bootstrap", "0", "--min-positives", "1"]) == 0
    card = open_package(out).card
    assert card.extra["site_tuning"]["per_class_rules"] == {"effusion": "specificity=0.9"}
    assert card.extra["site_tuning"]["classes"]["effusion"]["specificity"] >= 0.9
    assert "calibration" not in card.extra
    capsys.readouterr()
    assert main(["tune", "--model", str(model), "--data", str(labels.parent), "--rule",
                 "recall=0.9", "--out", str(out)]) == 2
    assert "--rule: rule 'recall=0.9' is not one of" in capsys.readouterr().err
    rules.write_text(json.dumps({"Hernia": "max-f1"}))
    assert main(["tune", "--model", str(model), "--data", str(labels.parent), "--rule", "youden",
                 "--per-class", str(rules), "--out", str(out), "--device", "cpu"]) == 2
    assert "per-class rule for 'Hernia': not a label" in capsys.readouterr().err


def test_tune_is_a_chexnet_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "tune " in capsys.readouterr().out
