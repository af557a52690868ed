"""A small ONNX graph with the chexnet model-package contract, built without torch.

image [N,3,224,224] -> AveragePool 32x32 -> [N,3,7,7] -> 1x1 Conv (K channels) -> ReLU = f
probs = sigmoid(W @ mean_hw(f) + b)      cams = einsum("ck,nkhw->nchw", W, f)

:func:`reference_outputs` computes the same in numpy, independently of ONNX Runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from chexnet.inference.package.card import CHESTXRAY14_LABELS, ModelCard, attach_card
from chexnet.inference.preprocessing import PreprocessSpec

K = 8


def tiny_weights(n_classes: int = 14, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv_w": rng.standard_normal((K, 3, 1, 1)).astype(np.float32),
        "conv_b": rng.standard_normal(K).astype(np.float32) * 0.1,
        "fc_w": rng.standard_normal((n_classes, K)).astype(np.float32) * 0.5,
        "fc_b": rng.standard_normal(n_classes).astype(np.float32) * 0.1,
    }


def tiny_card(labels=CHESTXRAY14_LABELS, **overrides) -> ModelCard:
    fields = dict(name="tiny-test-model", version="0.0.1", labels=tuple(labels),
                  preprocess=PreprocessSpec(), thresholds={lb: 0.5 for lb in labels},
                  threshold_rule="fixed 0.5 (test model)", demo=True,
                  description="a tiny random graph for tests", arch="tiny")
    fields.update(overrides)
    return ModelCard(**fields)


def build_tiny_package(path: Path, card: ModelCard | None = None, seed: int = 0,
                       with_card: bool = True) -> Path:
    card = card or tiny_card()
    n = len(card.labels)
    w = tiny_weights(n, seed)
    inits = [numpy_helper.from_array(v, k) for k, v in w.items()]
    inits.append(numpy_helper.from_array(np.array([0, K, 49], np.int64), "shape_nkx"))
    inits.append(numpy_helper.from_array(np.array([0, n, 7, 7], np.int64), "shape_cams"))
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[32, 32],
                         strides=[32, 32]),
        helper.make_node("Conv", ["pooled", "conv_w", "conv_b"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["f"]),
        helper.make_node("GlobalAveragePool", ["f"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["gap2"], axis=1),
        helper.make_node("Gemm", ["gap2", "fc_w", "fc_b"], ["logits"], transB=1),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
        helper.make_node("Reshape", ["f", "shape_nkx"], ["f_flat"]),
        helper.make_node("MatMul", ["fc_w", "f_flat"], ["cams_flat"]),
        helper.make_node("Reshape", ["cams_flat", "shape_cams"], ["cams"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_chexnet",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", n]),
         helper.make_tensor_value_info("cams", TensorProto.FLOAT, ["batch", n, 7, 7])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_card:
        attach_card(model, card)
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def reference_outputs(x: np.ndarray, n_classes: int = 14, seed: int = 0):
    """(probs, cams) of the tiny graph computed in numpy."""
    w = tiny_weights(n_classes, seed)
    n = x.shape[0]
    pooled = x.reshape(n, 3, 7, 32, 7, 32).mean(axis=(3, 5))
    f = np.einsum("kc,nchw->nkhw", w["conv_w"][:, :, 0, 0], pooled) + w["conv_b"][None, :,
                                                                                   None, None]
    f = np.maximum(f, 0)
    logits = f.mean(axis=(2, 3)) @ w["fc_w"].T + w["fc_b"]
    probs = 1 / (1 + np.exp(-logits))
    cams = np.einsum("ck,nkhw->nchw", w["fc_w"], f)
    return probs, cams
