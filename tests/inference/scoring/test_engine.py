"""The engine on a small real ONNX graph, against an independent numpy computation."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from chexnet.inference import Engine, ModelCard, load_image, preprocess
from chexnet.inference.errors import DeviceUnavailableError, ModelPackageError
from chexnet.inference.package.card import CARD_KEY
from chexnet.inference.package.hashing import file_sha256
from chexnet.inference.scoring.engine import select_providers
from chexnet.inference.scoring.ood import NO_OOD_WARNING
from tests.inference.screen.test_pipeline import noise_png
from tests.tiny_model import build_tiny_package, reference_outputs, tiny_card


def test_outputs_match_numpy_reference(tiny_model):
    engine = Engine(tiny_model, device="cpu")
    x = np.random.default_rng(3).standard_normal((5, 3, 224, 224)).astype(np.float32)
    out = engine.run(x)
    probs, cams = reference_outputs(x)
    np.testing.assert_allclose(out.probs, probs, atol=1e-5)
    np.testing.assert_allclose(out.cams, cams, atol=1e-4)
    assert out.cams.shape == (5, 14, 7, 7)


def test_prediction_carries_model_identity_and_ranking(tiny_model, nih_png):
    engine = Engine(tiny_model)
    image = load_image(nih_png)
    pred = engine.predict_one(image)
    assert pred.model.sha256 == file_sha256(tiny_model)
    assert len(pred.model.sha256) == 64
    assert pred.model.name == "tiny-test-model"
    assert pred.model.demo
    x, _ = preprocess(image.display_u8(), engine.card.preprocess)
    probs, _ = reference_outputs(x[None])
    ranked = [f.label for f in pred.ranked]
    assert ranked == [engine.labels[i] for i in np.argsort(-probs[0], kind="stable")]
    assert {f.label for f in pred.positives} == {
        lb for lb, p in zip(engine.labels, probs[0], strict=True) if p >= 0.5}


def test_batched_and_single_predictions_agree(tiny_model, nih_sample):
    paths = sorted((nih_sample / "images").glob("*.png"))[:5]
    images = [load_image(p) for p in paths]
    batched = Engine(tiny_model, batch_size=4).predict(images)
    single = [Engine(tiny_model, batch_size=1).predict_one(im) for im in images]
    for a, b in zip(batched, single, strict=True):
        assert a.path == b.path
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)


def test_gate_stops_non_chest_before_scoring(tiny_model, rg3_uncr, rg1_uncr):
    preds = Engine(tiny_model).predict([load_image(rg3_uncr), load_image(rg1_uncr)])
    assert preds[0].status == "not_analysed"
    assert preds[0].probabilities is None
    assert preds[0].ranked == []
    assert "EXTREMITY" in preds[0].reasons[0]
    assert preds[1].status == "analysed_with_warnings"  # the tiny package has no OOD check
    assert preds[1].warnings == (NO_OOD_WARNING,)
    assert preds[1].probabilities.shape == (14,)


def test_package_without_card_is_refused(tmp_path):
    path = build_tiny_package(tmp_path / "bare.onnx", with_card=False)
    with pytest.raises(ModelPackageError, match="no model card"):
        Engine(path)


def test_card_that_disagrees_with_the_graph_is_refused(tmp_path):
    path = build_tiny_package(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    wrong = tiny_card(labels=("A", "B", "C"))
    for prop in model.metadata_props:
        if prop.key == CARD_KEY:
            prop.value = wrong.to_json()
    onnx.save(model, str(path))
    with pytest.raises(ModelPackageError, match="3 labels"):
        Engine(path)


def test_card_with_other_input_size_is_refused(tmp_path):
    from chexnet.inference import PreprocessSpec

    card = tiny_card(preprocess=PreprocessSpec(size=320, resize=320))
    with pytest.raises(ModelPackageError, match="input shape"):
        Engine(build_tiny_package(tmp_path / "m.onnx", card=card))


def test_missing_and_garbage_packages_are_named(tmp_path):
    with pytest.raises(ModelPackageError, match="not found"):
        Engine(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelPackageError, match=r"not a readable ONNX file|cannot load"):
        Engine(junk)


def test_card_round_trip_keeps_thresholds_and_extras():
    card = tiny_card(thresholds={"Effusion": 0.31}, extra={"note": "x"})
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert again.threshold("Effusion") == 0.31
    assert again.threshold("Mass") == 0.5


def test_device_selection_on_this_machine():
    assert select_providers("cpu") == ["CPUExecutionProvider"]
    assert select_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="device must be one of"):
        select_providers("tpu")


def test_cuda_request_without_gpu_fails_loudly(tiny_model):
    if "CUDAExecutionProvider" in select_providers("auto"):
        pytest.skip("this machine has a usable CUDA GPU")
    with pytest.raises(DeviceUnavailableError, match="cuda"):
        Engine(tiny_model, device="cuda")


def test_tiny_and_elongated_images_are_not_scored(tiny_model, tmp_path):
    from PIL import Image as PILImage

    PILImage.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / "dot.png")
    PILImage.fromarray(np.zeros((100, 1000), np.uint8)).save(tmp_path / "strip.png")
    noise_png(tmp_path / "wide.png", seed=0, shape=(200, 500))  # wide, with contrast
    dot, strip, wide = Engine(tiny_model).predict(
        [load_image(tmp_path / n) for n in ("dot.png", "strip.png", "wide.png")])
    assert dot.status == "not_analysed"
    assert "too small" in dot.reasons[0]
    assert strip.status == "not_analysed"
    assert "elongated" in strip.reasons[0]
    assert wide.status == "analysed_with_warnings"
    assert "central 40%" in wide.warnings[0]


def test_spinning_can_be_turned_off_without_changing_results(tiny_model, nih_png):
    image = load_image(nih_png)
    spinning, calm = Engine(tiny_model), Engine(tiny_model, spin=False)
    key = "session.intra_op.allow_spinning"
    assert calm.session.get_session_options().get_session_config_entry(key) == "0"
    a, b = spinning.predict([image])[0], calm.predict([image])[0]
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
