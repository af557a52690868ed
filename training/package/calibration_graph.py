"""Graph surgery: bake a per-class calibration into a package's ``probs``.

The node that made ``probs`` now makes ``calibration/raw_probs``; after it come

    q = Clip(raw, EPS, 1 - EPS);  z = Log(q) - Log(1 - q);  probs = Sigmoid(a * z + b)

with ``a`` and ``b`` [C] as initializers (the package stays one file whose sha256 covers them).
The logit is taken of the probabilities, not of the classifier's own logits, so the graph is
exactly :func:`chexnet.training.evaluation.calibration.apply_platt` applied to what the source
graph returned, whatever made its ``probs``. ``cams`` and ``ood_score`` do not depend on
``probs`` and are untouched; a second calibration replaces the first (never stacks).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from chexnet.inference.package.card import PROBS_NAME
from chexnet.training.evaluation.calibration import EPS

PREFIX = "calibration/"
RAW_NAME = PREFIX + "raw_probs"


def without_calibration(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with any earlier calibration removed (``probs`` as the source made
    it)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    if not any(n.name.startswith(PREFIX) for n in g.node):
        return out
    kept = [n for n in g.node if not n.name.startswith(PREFIX)]
    kept_inits = [t for t in g.initializer if not t.name.startswith(PREFIX)]
    for node in kept:
        for names in (node.output, node.input):
            for i, name in enumerate(names):
                if name == RAW_NAME:
                    names[i] = PROBS_NAME
    for field, items in ((g.node, kept), (g.initializer, kept_inits)):
        items = [type(x).FromString(x.SerializeToString()) for x in items]
        del field[:]
        field.extend(items)
    return out


def current_calibration(model: onnx.ModelProto) -> tuple[np.ndarray, np.ndarray] | None:
    """The (a, b) a graph already applies, or None."""
    inits = {t.name: t for t in model.graph.initializer}
    if PREFIX + "a" not in inits:
        return None
    return tuple(numpy_helper.to_array(inits[PREFIX + k]).reshape(-1).astype(np.float64)
                 for k in ("a", "b"))


def compose(first: tuple[np.ndarray, np.ndarray], then: tuple[np.ndarray, np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray]:
    """One (a, b) for ``then`` applied after ``first``: logit' = a2 (a1 z + b1) + b2."""
    (a1, b1), (a2, b2) = first, then
    return a2 * a1, a2 * b1 + b2


def add_calibration(model: onnx.ModelProto, a: np.ndarray, b: np.ndarray) -> onnx.ModelProto:
    """``model`` whose ``probs`` are ``sigmoid(a * logit(probs) + b)`` per class."""
    out = without_calibration(model)
    g = out.graph
    producers = [n for n in g.node if PROBS_NAME in n.output]
    if len(producers) != 1:
        raise ValueError(f"the graph has {len(producers)} producers of '{PROBS_NAME}', not one")
    node = producers[0]
    node.output[list(node.output).index(PROBS_NAME)] = RAW_NAME
    for other in g.node:  # anything else that read probs now reads the raw ones
        if other is not node:
            for i, name in enumerate(other.input):
                if name == PROBS_NAME:
                    other.input[i] = RAW_NAME
    f32 = np.float32
    inits = {"lo": np.array(EPS, f32), "hi": np.array(1 - EPS, f32), "one": np.array(1, f32),
             "a": np.asarray(a, f32).reshape(1, -1), "b": np.asarray(b, f32).reshape(1, -1)}
    g.initializer.extend(numpy_helper.from_array(v, PREFIX + k) for k, v in inits.items())
    p = PREFIX

    def op(kind: str, inputs: list[str], output: str) -> onnx.NodeProto:
        return helper.make_node(kind, inputs, [output], name=p + output.removeprefix(p) + "_op")

    g.node.extend([
        op("Clip", [RAW_NAME, p + "lo", p + "hi"], p + "clipped"),
        op("Sub", [p + "one", p + "clipped"], p + "complement"),
        op("Log", [p + "clipped"], p + "log_p"),
        op("Log", [p + "complement"], p + "log_q"),
        op("Sub", [p + "log_p", p + "log_q"], p + "logit"),
        op("Mul", [p + "logit", p + "a"], p + "scaled"),
        op("Add", [p + "scaled", p + "b"], p + "shifted"),
        helper.make_node("Sigmoid", [p + "shifted"], [PROBS_NAME], name=p + "probs_op")])
    return out
