"""fp16 parity of an exported graph: measured on the CPU provider, recorded in the card, and the
card allows fp16 only within the tolerance."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from chexnet.inference.package.card import FP16_MAX_ABS_DIFF
from chexnet.inference.package.verify import open_package
from chexnet.training.package import fp16_parity
from chexnet.training.package.fp16_parity import allowed_precision, measure_fp16_parity
from tests.tiny_model import build_tiny_package, reference_outputs

pytest.importorskip("torch", reason="training extra (torch) not installed")


def test_tiny_graph_parity_matches_fp16_rounding(tmp_path):
    proto = onnx.load(str(build_tiny_package(tmp_path / "t.onnx")))
    x = np.random.default_rng(1).standard_normal((4, 3, 224, 224)).astype(np.float32)
    parity = measure_fp16_parity(proto, x)
    probs, _ = reference_outputs(x)
    # fp16 keeps ~3 decimal digits: the sigmoid outputs move, but by far less than 0.01
    assert 0 < parity["max_abs_diff"] < 2e-3
    assert parity["images"] == 4
    assert "CPU provider" in parity["how"]
    assert "ood_max_rel_diff" not in parity  # the tiny graph has no OOD output
    assert allowed_precision(parity) == "fp16"
    assert np.all((probs > 0) & (probs < 1))


def test_unmeasured_or_out_of_tolerance_stays_fp32(tmp_path, monkeypatch):
    proto = onnx.load(str(build_tiny_package(tmp_path / "t.onnx")))

    def broken(*args, **kwargs):
        raise RuntimeError("no fp16 kernel for op X")

    import onnxruntime.transformers.float16 as f16

    monkeypatch.setattr(f16, "convert_float_to_float16", broken)
    parity = measure_fp16_parity(proto, np.zeros((1, 3, 224, 224), np.float32))
    assert parity == {"status": "unmeasured", "why": "RuntimeError: no fp16 kernel for op X"}
    assert allowed_precision(parity) == "fp32"
    assert allowed_precision({"max_abs_diff": FP16_MAX_ABS_DIFF * 1.01}) == "fp32"
    assert allowed_precision({"max_abs_diff": FP16_MAX_ABS_DIFF}) == "fp16"
    assert allowed_precision({"max_abs_diff": 1e-4, "ood_max_rel_diff":
                              fp16_parity.OOD_MAX_REL_DIFF * 2}) == "fp32"
    assert allowed_precision({"max_abs_diff": float("nan")}) == "fp32"


def test_export_records_parity_in_the_card(tmp_path):
    import torch

    from chexnet.training.fit.cam_model import build_model
    from chexnet.training.package.export import export_package, untrained_card

    torch.manual_seed(0)
    model = build_model("densenet121", 14)
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    export_package(model, untrained_card(), tmp_path / "m.onnx", check_inputs=x)
    card = open_package(tmp_path / "m.onnx", check_registry=False).card
    assert card.fp16_parity["images"] == 2
    # measured, not assumed: fp16 rounding moves a DenseNet-121's probabilities a little, and
    # by far less than the tolerance, so this card allows fp16
    assert 0 < card.fp16_parity["max_abs_diff"] <= FP16_MAX_ABS_DIFF
    assert card.precision == "fp16"
