"""Graph surgery: give an existing model package an ``ood_score`` output.

The score is the Mahalanobis distance of the image's globally average-pooled last feature map
to the reference (training) images' features, as in Lee et al. 2018 ("A simple unified
framework for detecting out-of-distribution samples and adversarial attacks", NeurIPS), with
one Gaussian for all images (multi-label findings have no class-conditional means):

    f = GlobalAveragePool(F)                 F: the feature map the CAMs are computed from
    ood_score = || (f - mean) @ W ||_2       W: a whitening factor of the precision, P = W W^T

so ``ood_score**2 = (f - mean)^T P (f - mean)``. Storing ``W`` (the precision's Cholesky
factor, or ``V_k diag(1/sqrt(lambda_k))`` for a PCA-k estimate) instead of ``P`` makes the
squared distance a sum of squares, never negative in float32, and a PCA-k graph smaller.
``mean`` and ``W`` are initializers: the package stays one file whose sha256 covers them, and
ONNX Runtime runs the check with the model.

The feature map is found, not named: it is the last tensor that both ``probs`` and ``cams`` are
computed from (this project's exporter, its importers and the test graphs all end in
``features -> (pool -> classifier, CAM)``), so the surgery works on any package they make.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from chexnet.inference.package.card import CAMS_NAME, OOD_NAME, PROBS_NAME

#: Name prefix of every node, tensor and initializer the surgery adds (and removes on a refit).
PREFIX = "ood/"
POOLED_NAME = PREFIX + "pooled"


def find_feature_map(model: onnx.ModelProto) -> str:
    """The name of the last tensor that both ``probs`` and ``cams`` depend on (a ValueError
    when there is none, or it is not a 4-D [N, K, h, w] map)."""
    graph = model.graph
    producer = {out: i for i, node in enumerate(graph.node) for out in node.output}
    outputs = {o.name for o in graph.output}
    if not {PROBS_NAME, CAMS_NAME} <= outputs:
        raise ValueError(f"the graph returns {sorted(outputs)}, not '{PROBS_NAME}' and "
                         f"'{CAMS_NAME}'")

    def ancestors(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            tensor = todo.pop()
            if tensor in seen or tensor not in producer:  # initializers and graph inputs
                continue
            seen.add(tensor)
            todo.extend(t for t in graph.node[producer[tensor]].input if t)
        return seen

    common = (ancestors(PROBS_NAME) & ancestors(CAMS_NAME)) - {PROBS_NAME, CAMS_NAME}
    if not common:
        raise ValueError("probs and cams share no computed tensor: no feature map to pool")
    name = max(common, key=lambda t: producer[t])
    rank = tensor_rank(model, name)
    if rank not in (None, 4):
        raise ValueError(f"the last tensor shared by probs and cams, {name!r}, has rank {rank}, "
                         "not a [N, K, h, w] feature map")
    return name


def tensor_rank(model: onnx.ModelProto, name: str) -> int | None:
    """The rank ONNX shape inference gives ``name`` (None when it cannot tell)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    infos = [*inferred.graph.value_info, *inferred.graph.output]
    info = next((v for v in infos if v.name == name), None)
    if info is None or not info.type.tensor_type.HasField("shape"):
        return None
    return len(info.type.tensor_type.shape.dim)


def without_ood(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` without any earlier surgery (nodes, initializers, outputs)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    keep_nodes = [n for n in g.node
                  if not any(o.startswith(PREFIX) or o == OOD_NAME for o in n.output)]
    keep_inits = [t for t in g.initializer if not t.name.startswith(PREFIX)]
    keep_outputs = [o for o in g.output if o.name != OOD_NAME and not o.name.startswith(PREFIX)]
    for field, kept in ((g.node, keep_nodes), (g.initializer, keep_inits),
                        (g.output, keep_outputs)):
        kept = [type(x).FromString(x.SerializeToString()) for x in kept]
        del field[:]
        field.extend(kept)
    return out


def _batch_dim(model: onnx.ModelProto) -> str | int:
    probs = next(o for o in model.graph.output if o.name == PROBS_NAME)
    dim = probs.type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "batch")


def with_pooled_features(model: onnx.ModelProto, feature_map: str | None = None
                         ) -> onnx.ModelProto:
    """``model`` (without earlier surgery) plus an output ``ood/pooled`` [N, K]: the pooled
    feature map. What the statistics are fitted on."""
    out = without_ood(model)
    feature_map = feature_map or find_feature_map(out)
    out.graph.node.extend([
        helper.make_node("GlobalAveragePool", [feature_map], [PREFIX + "pooled_map"],
                         name=PREFIX + "GlobalAveragePool"),
        helper.make_node("Flatten", [PREFIX + "pooled_map"], [POOLED_NAME], axis=1,
                         name=PREFIX + "Flatten")])
    out.graph.output.append(helper.make_tensor_value_info(
        POOLED_NAME, TensorProto.FLOAT, [_batch_dim(model), None]))
    return out


def add_ood_score(model: onnx.ModelProto, mean: np.ndarray, whitening: np.ndarray,
                  feature_map: str | None = None) -> onnx.ModelProto:
    """``model`` (any earlier surgery replaced) plus the output ``ood_score`` [N] =
    ``|| (pool(feature_map) - mean) @ whitening ||`` (the module docstring)."""
    mean = np.asarray(mean, dtype=np.float32).reshape(-1)
    whitening = np.asarray(whitening, dtype=np.float32)
    if whitening.ndim != 2 or whitening.shape[0] != mean.size:
        raise ValueError(f"whitening matrix {whitening.shape} does not fit {mean.size} features")
    out = with_pooled_features(model, feature_map)
    del out.graph.output[-1]  # the pooled features stay internal
    opset = next((o.version for o in out.opset_import if o.domain in ("", "ai.onnx")), 17)
    reduce = dict(keepdims=0, name=PREFIX + "ReduceSum")
    inputs = [PREFIX + "squares"]
    if opset >= 13:  # ReduceSum takes its axes as an input from opset 13 on
        inputs.append(PREFIX + "axes")
        out.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64),
                                                             PREFIX + "axes"))
    else:
        reduce["axes"] = [1]
    out.graph.initializer.extend([numpy_helper.from_array(mean, PREFIX + "mean"),
                                  numpy_helper.from_array(whitening, PREFIX + "whitening")])
    out.graph.node.extend([
        helper.make_node("Sub", [POOLED_NAME, PREFIX + "mean"], [PREFIX + "centred"],
                         name=PREFIX + "Sub"),
        helper.make_node("MatMul", [PREFIX + "centred", PREFIX + "whitening"],
                         [PREFIX + "whitened"], name=PREFIX + "MatMul"),
        helper.make_node("Mul", [PREFIX + "whitened", PREFIX + "whitened"],
                         [PREFIX + "squares"], name=PREFIX + "Mul"),
        helper.make_node("ReduceSum", inputs, [PREFIX + "squared_distance"], **reduce),
        helper.make_node("Sqrt", [PREFIX + "squared_distance"], [OOD_NAME],
                         name=PREFIX + "Sqrt")])
    out.graph.output.append(helper.make_tensor_value_info(
        OOD_NAME, TensorProto.FLOAT, [_batch_dim(model)]))
    return out
