"""The engine's out-of-distribution gate: real runs of the bundled package, old packages, TTA."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
from PIL import Image as PILImage
from sklearn.datasets import load_sample_images

from chexnet.inference import Engine, load_image
from chexnet.inference.errors import ModelPackageError
from chexnet.inference.package.card import CARD_KEY, ModelCard, attach_card
from chexnet.inference.package.lookup import DEFAULT_MODEL_FILE, bundled_models_dir
from chexnet.inference.scoring.ood import NO_OOD_WARNING, merge_ood, ood_reason
from chexnet.inference.status import Status
from tests.tiny_model import build_tiny_package, tiny_card

OOD = {"threshold": 5.0, "score": "mahalanobis_distance", "percentile": 99.5}


@pytest.fixture(scope="module")
def bundled() -> Engine:
    path = bundled_models_dir() / DEFAULT_MODEL_FILE
    if not path.is_file():
        pytest.skip("no bundled default model in this checkout")
    return Engine(path, device="cpu")


def _png(path, pixels):
    PILImage.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_a_grey_photograph_is_not_analysed_by_the_bundled_model(bundled, tmp_path):
    """A grey photograph passes the pixel checks (it has contrast, no colour, no noise): the
    model's own features refuse it."""
    photo = np.asarray(PILImage.fromarray(load_sample_images().images[0]).convert("L"))
    pred = bundled.predict_one(load_image(_png(tmp_path / "photo.png", photo)))
    assert pred.status is Status.NOT_ANALYSED
    assert pred.probabilities is None
    assert pred.cams is None
    assert pred.ranked == []
    assert pred.ood_score > bundled.card.ood_threshold
    (reason,) = pred.reasons
    assert reason.startswith("does not look like a chest radiograph this model knows")
    assert f"{pred.ood_score:.1f}" in reason
    assert f"{bundled.card.ood_threshold:.1f}" in reason
    assert pred.to_dict()["ood_score"] == pytest.approx(pred.ood_score, abs=1e-3)


def test_nih_sample_image_stays_analysed(bundled, nih_png):
    pred = bundled.predict_one(load_image(nih_png))
    assert pred.analysed
    assert pred.probabilities.shape == (14,)
    assert 0 < pred.ood_score < bundled.card.ood_threshold
    assert NO_OOD_WARNING not in pred.warnings


def test_bundled_card_records_how_the_check_was_made(bundled):
    ood = bundled.card.ood
    assert ood["n_reference"] == 294
    assert ood["feature_dim"] == 1024
    assert ood["percentile"] == 99.5
    assert "cross-fitted" in ood["threshold_rule"]
    assert "Lee" in ood["citation"]
    held = next(r for r in ood["rates"] if r["set"].startswith("NIH held-out (val+test)"))
    assert held["n"] == 126


def test_package_without_the_check_still_works_with_a_warning(tiny_model, nih_png):
    pred = Engine(tiny_model, device="cpu").predict_one(load_image(nih_png))
    assert pred.analysed
    assert pred.ood_score is None
    assert NO_OOD_WARNING in pred.warnings
    assert pred.to_dict()["ood_score"] is None


def test_tta_averages_the_crops_scores(bundled, nih_png):
    engine = Engine(bundled.package, device="cpu", tta="five-crop")
    image = load_image(nih_png)
    prepared = engine.prepare(image)
    crops = engine.run(prepared.model_input()).ood
    pred = engine.score([prepared])[0]
    assert len(crops) == 5
    assert pred.ood_score == pytest.approx(float(np.mean(crops)), rel=1e-6)


def test_reason_only_above_the_limit():
    assert ood_reason(4.9, 5.0) is None
    assert "score 5.1 above the model's limit 5.0" in ood_reason(5.1, 5.0)
    assert ood_reason(float("nan"), 5.0) is not None
    assert merge_ood(np.array([1.0, 2.0, 6.0])) == 3.0


def _with_card(path, card):
    model = onnx.load(str(path))
    attach_card(model, card)
    onnx.save(model, str(path))
    return path


def test_card_limit_without_graph_output_is_refused(tmp_path):
    path = _with_card(build_tiny_package(tmp_path / "m.onnx"), tiny_card(ood=OOD))
    with pytest.raises(ModelPackageError, match="lacks the 'ood_score' output"):
        Engine(path)


def test_graph_output_without_card_limit_is_refused(tmp_path):
    from onnx import TensorProto, helper

    path = build_tiny_package(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.graph.node.append(helper.make_node("ReduceMax", ["probs"], ["ood_score"], axes=[1],
                                             keepdims=0))
    model.graph.output.append(helper.make_tensor_value_info("ood_score", TensorProto.FLOAT,
                                                            ["batch"]))
    onnx.save(model, str(path))
    with pytest.raises(ModelPackageError, match="gives no out-of-distribution limit"):
        Engine(path)
    _with_card(path, tiny_card(ood=OOD))
    engine = Engine(path, device="cpu")  # valid once the card gives the limit
    out = engine.run(np.zeros((2, 3, 224, 224), np.float32))
    np.testing.assert_allclose(out.ood, out.probs.max(axis=1))


def test_card_round_trips_with_and_without_ood():
    card = tiny_card(ood=dict(OOD, rates=[{"set": "x", "n": 3, "rejected": 1, "rate": 0.33}]))
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.ood_threshold == 5.0
    old = json.loads(tiny_card().to_json())
    old.pop("ood")  # a card written before the field existed
    assert ModelCard.from_json(json.dumps(old)).ood is None
    with pytest.raises(ValueError, match="positive 'threshold'"):
        dataclasses.replace(card, ood={"threshold": -1})
    with pytest.raises(ValueError, match="positive 'threshold'"):
        tiny_card(ood={"percentile": 99})
    assert CARD_KEY  # the card travels under its key (attach_card)
