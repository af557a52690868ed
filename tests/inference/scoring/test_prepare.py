"""Scoring in two steps: prepare (no model session, picklable, what the screener's workers
return) and Engine.score (batched, merged, gate passthrough), checked against the numpy
reference of the tiny model on real images."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from chexnet.inference import Engine, PreprocessSpec, load_image, preprocess
from chexnet.inference.scoring.decode_size import model_crop, model_min_side
from chexnet.inference.scoring.prepare import PreparedInput, prepare_input
from chexnet.inference.scoring.tta import normalise_crops, tta_crops
from tests.tiny_model import reference_outputs, tiny_card

SPEC = tiny_card().preprocess


@pytest.mark.parametrize("mode", ["none", "ten-crop"])
def test_prepared_input_travels_and_scores_as_the_reference(tiny_model, rg1_uncr, mode):
    image = load_image(rg1_uncr)
    prepared = prepare_input(image, SPEC, mode)  # a function of the card, no session
    wire = pickle.dumps(prepared)
    # 8-bit crops cross the process boundary, not float32 model inputs (12x larger)
    assert prepared.pixels.dtype == np.uint8
    assert len(wire) < (60_000 if mode == "none" else 600_000)
    back = pickle.loads(wire)
    display = image.display_u8()
    want = (preprocess(display, SPEC)[0][None] if mode == "none"
            else normalise_crops(tta_crops(display, SPEC, mode).pixels, SPEC))
    np.testing.assert_array_equal(back.model_input(), want)
    assert back.n_inputs == (1 if mode == "none" else 10)
    assert back.uids == image.metadata.uids
    assert back.uids.sop_instance is not None

    engine = Engine(tiny_model, device="cpu", batch_size=4)
    pred = engine.score([back])[0]
    probs, _cams = reference_outputs(want)
    np.testing.assert_allclose(pred.probabilities, probs.mean(axis=0), atol=1e-5)
    assert pred.tta == mode
    assert pred.image_shape == image.shape
    assert pred.uids == image.metadata.uids
    same = engine.predict([image], tta=mode)[0]
    np.testing.assert_array_equal(pred.probabilities, same.probabilities)
    np.testing.assert_array_equal(pred.cams, same.cams)
    assert pred.warnings == same.warnings
    assert pred.crop_box == same.crop_box


def test_score_runs_batch_size_model_inputs_and_keeps_the_order(tiny_model, nih_sample,
                                                                 rg3_uncr):
    paths = sorted((nih_sample / "images").glob("*.png"))[:3]
    images = [load_image(paths[0]), load_image(rg3_uncr), *(load_image(p) for p in paths[1:])]
    engine = Engine(tiny_model, device="cpu", batch_size=8)
    calls = []
    run = engine.run
    engine.run = lambda batch: calls.append(len(batch)) or run(batch)
    prepared = [engine.prepare(im, tta="ten-crop") for im in images]
    prepared[2] = engine.prepare(images[2], tta="none")  # modes may mix in one call
    preds = engine.score(prepared)
    assert calls == [8, 8, 5]  # 10 + 1 + 10 inputs, the not-analysed extremity none
    assert [p.path for p in preds] == [im.path for im in images]
    assert preds[1].status == "not_analysed"
    assert "EXTREMITY" in preds[1].reasons[0]
    assert preds[1].probabilities is None
    assert [p.tta for p in preds] == ["ten-crop", "none", "none", "ten-crop"]
    for pred, image, mode in zip(preds, images, ["ten-crop", None, "none", "ten-crop"],
                                 strict=True):
        if mode is None:
            continue
        x = normalise_crops(tta_crops(image.display_u8(), SPEC, mode).pixels, SPEC)
        np.testing.assert_allclose(pred.probabilities, reference_outputs(x)[0].mean(axis=0),
                                   atol=1e-5)


def test_score_refuses_inputs_prepared_for_another_model(tiny_model, nih_png):
    other = PreprocessSpec(size=224, resize=256)
    prepared = prepare_input(load_image(nih_png), other, "none")
    with pytest.raises(ValueError, match=r"00000075_000\.png.*another model"):
        Engine(tiny_model, device="cpu").score([prepared])


def test_reduced_decode_prepares_its_model_crop_and_refuses_crops(rg1_j2kr):
    reduced = load_image(rg1_j2kr, min_size=model_min_side(SPEC))
    assert reduced.is_reduced
    prepared = prepare_input(reduced, SPEC, "none")
    crop, box = model_crop(reduced, SPEC)
    np.testing.assert_array_equal(prepared.pixels[0], crop)
    assert prepared.crop_box == box
    assert prepared.image_shape == reduced.shape
    with pytest.raises(ValueError, match="full-resolution"):
        prepare_input(reduced, SPEC, "five-crop")


def test_not_analysed_carries_no_pixels(rg3_uncr):
    prepared = prepare_input(load_image(rg3_uncr), SPEC, "five-crop")
    assert isinstance(prepared, PreparedInput)
    assert not prepared.analyse
    assert prepared.n_inputs == 0
    with pytest.raises(ValueError, match="not analysed"):
        prepared.model_input()
