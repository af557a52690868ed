"""``chexnet eval --tta``: scores with test-time augmentation and reports what it changes,
checked against AUROCs computed here from the tiny model's numpy reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from chexnet.inference import load_image
from chexnet.inference.cli.main import main
from chexnet.inference.preprocessing import PreprocessSpec, preprocess
from chexnet.inference.scoring.tta import normalise_crops, tta_crops
from chexnet.training.evaluation.inputs import load_truth
from tests.tiny_model import build_tiny_package, reference_outputs, tiny_card

N_IMAGES = 30


@pytest.fixture(scope="module")
def subset(nih_sample, tmp_path_factory):
    """The first 30 images of the NIH sample, named in a list file."""
    names = sorted(p.name for p in (nih_sample / "images").glob("*.png"))[:N_IMAGES]
    listing = tmp_path_factory.mktemp("tta") / "list.txt"
    listing.write_text("\n".join(names) + "\n")
    return listing


def _eval(nih_sample, model, listing, out, *extra) -> dict:
    rc = main(["eval", "--model", str(model), "--data", str(nih_sample / "images"), "--labels",
               str(nih_sample / "Data_Entry_2017.csv"), "--images", str(listing), "--out",
               str(out), "--device", "cpu", "--bootstrap", "200", *extra])
    assert rc == 0
    return json.loads((out / "metrics.json").read_text())


def _reference_probs(nih_sample, ids, mode) -> np.ndarray:
    rows = []
    for name in ids:
        grey = load_image(nih_sample / "images" / name).display_u8()
        x = (preprocess(grey, PreprocessSpec())[0][None] if mode == "none" else
             normalise_crops(tta_crops(grey, PreprocessSpec(), mode).pixels, PreprocessSpec()))
        rows.append(reference_outputs(x)[0].mean(axis=0))
    return np.array(rows)


def test_eval_reports_auroc_with_and_without_tta(nih_sample, tiny_model, subset, tmp_path,
                                                  capsys):
    m = _eval(nih_sample, tiny_model, subset, tmp_path / "five", "--tta", "five-crop")
    printed = capsys.readouterr().out
    tta = m["tta"]
    comp = tta["comparison"]
    assert tta["mode"] == "five-crop"
    assert tta["thresholds_assume"] == "none"
    assert set(tta["seconds_per_image"]) == {"five-crop", "none"}
    assert m["n_images"] == comp["n_images"] == N_IMAGES
    # the headline metrics are the augmented ones ...
    assert comp["mean_auroc"]["five-crop"] == pytest.approx(m["mean_auroc"])
    # ... and the baseline is exactly what a run without augmentation gives
    plain = _eval(nih_sample, tiny_model, subset, tmp_path / "none", "--tta", "none")
    assert "comparison" not in plain["tta"]
    assert comp["mean_auroc"]["none"] == pytest.approx(plain["mean_auroc"])
    # independent: the tiny model's numpy outputs on the same crops, AUROC by scikit-learn
    truth = load_truth(nih_sample / "Data_Entry_2017.csv")
    ids = [i for i in truth.ids if i in set(subset.read_text().split())]
    y = truth.y[[truth.ids.index(i) for i in ids]]
    probs = {mode: _reference_probs(nih_sample, ids, mode) for mode in ("none", "five-crop")}
    deltas = []
    for c, label in enumerate(m["labels"]):
        entry = comp["per_class"][label]
        if len(set(y[:, c])) < 2:
            assert entry["delta"] is None
            continue
        want = {mode: roc_auc_score(y[:, c], p[:, c]) for mode, p in probs.items()}
        assert entry["auroc_five-crop"] == pytest.approx(want["five-crop"], abs=1e-6)
        assert entry["auroc_none"] == pytest.approx(want["none"], abs=1e-6)
        assert entry["delta"] == pytest.approx(want["five-crop"] - want["none"], abs=1e-6)
        deltas.append(entry["delta"])
    assert comp["delta_mean_auroc"] == pytest.approx(np.mean(deltas), abs=1e-9)
    lo, hi = comp["delta_mean_auroc_ci"]
    assert lo <= comp["delta_mean_auroc"] <= hi
    report = (tmp_path / "five" / "report.md").read_text()
    assert "## Test-time augmentation" in report
    assert f"{comp['delta_mean_auroc']:+.4f}" in report
    assert "test-time augmentation five-crop: mean AUROC" in printed


def test_eval_defaults_to_the_cards_tta(nih_sample, subset, tmp_path):
    pkg = build_tiny_package(tmp_path / "ten.onnx", tiny_card(tta="ten-crop"))
    m = _eval(nih_sample, pkg, subset, tmp_path / "out")
    assert m["tta"]["mode"] == "ten-crop"
    assert m["inputs"]["model"]["tta"] == "ten-crop"
    assert m["tta"]["comparison"]["mean_auroc"]["ten-crop"] == pytest.approx(m["mean_auroc"])
    m = _eval(nih_sample, pkg, subset, tmp_path / "none", "--tta", "none", "--bootstrap", "0")
    assert any("thresholds were chosen with ten-crop" in n for n in m["notes"])


def test_tta_needs_a_model(nih_sample, tmp_path, capsys):
    preds = tmp_path / "p.csv"
    preds.write_text("Image Index,Mass\n00000001_000.png,0.5\n")
    rc = main(["eval", "--predictions", str(preds), "--labels",
               str(nih_sample / "Data_Entry_2017.csv"), "--out", str(tmp_path / "o"),
               "--tta", "five-crop"])
    assert rc == 2
    assert "--tta is for running a model" in capsys.readouterr().err


def test_export_chooses_thresholds_on_the_tta_scores(nih_sample, tmp_path, capsys):
    pytest.importorskip("torch", reason="training extra (torch) not installed")
    from chexnet.inference import Engine
    from chexnet.training.cli import train as train_cli
    from chexnet.training.evaluation.metrics import choose_thresholds
    from chexnet.training.fit.run_folder import RunFolder

    run = tmp_path / "run"
    assert train_cli.main([str(nih_sample), "--out", str(run), "--size", "32", "--epochs", "1",
                           "--workers", "0", "--cache-dir", str(tmp_path / "cache"),
                           "--max-steps-per-epoch", "1"]) == 0
    plain, five = tmp_path / "plain.onnx", tmp_path / "five.onnx"
    assert main(["export", str(run), "--out", str(plain)]) == 0
    assert main(["export", str(run), "--out", str(five), "--tta", "five-crop"]) == 0
    capsys.readouterr()
    val = RunFolder(run).load_val_predictions()
    default_card, card = Engine(plain).card, Engine(five).card
    assert default_card.tta == "none"  # the default is unchanged: torch's validation scores
    want = choose_thresholds(val["y"], val["probs"], labels=default_card.labels)
    assert [default_card.threshold(lb) for lb in default_card.labels] == pytest.approx(want)
    # with --tta: the package's own five-crop scores of the same validation images
    assert card.tta == "five-crop"
    assert Engine(five).tta == "five-crop"
    images = [load_image(nih_sample / "images" / str(i)) for i in val["ids"]]
    probs = np.stack([p.probabilities for p in Engine(five).predict(images)])
    want = choose_thresholds(val["y"], probs.astype(np.float64), labels=card.labels)
    assert [card.threshold(lb) for lb in card.labels] == pytest.approx(want)
    assert card.thresholds != default_card.thresholds
    assert "five-crop" in card.threshold_rule
    assert card.validation_metrics["auroc_without_tta"] == default_card.validation_metrics["auroc"]
