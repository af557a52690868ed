"""How far an fp16 copy of an exported graph strays from it: what lets a card say ``precision:
fp16`` (TensorRT may then build an fp16 engine).

The graph is converted with ONNX Runtime's own converter (``onnxruntime.transformers.float16``:
weights and activations stored in fp16, inputs and outputs kept fp32) and both copies run on the
CPU provider on the export's check inputs. The CPU provider has few fp16 kernels: it computes in
fp32 between Cast nodes, and its graph optimiser would fold those casts away (measured: 434
casts -> 4, the whole graph back in fp32, only the weights' rounding left), so the fp16 copy runs
unoptimised and every activation is rounded to fp16 between operators. TensorRT's fp16 engine
chooses its own per-layer precision and fusions, so this is an estimate of the storage rounding,
not TensorRT's exact error: `benchmarks/gpu_check.sh` measures the real one on a GPU. Where the
conversion or the CPU run fails (an operator without an fp16 CPU kernel), the parity is recorded
as unmeasured and the card stays fp32.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import onnx

from chexnet.inference.package.card import FP16_MAX_ABS_DIFF, INPUT_NAME, OOD_NAME, PROBS_NAME

log = logging.getLogger(__name__)

HOW = ("onnxruntime.transformers.float16 (keep_io_types), unoptimised on the CPU provider "
       "(fp16 weights and activations, fp32 arithmetic) vs the fp32 graph, on the export's "
       "check inputs")
#: Largest relative change of the out-of-distribution score that still allows fp16 (its
#: distances are large numbers, the first thing fp16's range can break).
OOD_MAX_REL_DIFF = 0.01


def _run(model_bytes: bytes, inputs: np.ndarray, outputs: list[str], optimise: bool = True
         ) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    return session.run(outputs, {INPUT_NAME: inputs})


def measure_fp16_parity(proto: onnx.ModelProto, inputs: np.ndarray) -> dict:
    """{"max_abs_diff", "ood_max_rel_diff" (with an OOD output), "images", "how"}, or
    {"status": "unmeasured", "why"} when it cannot be measured here."""
    outputs = [PROBS_NAME] + ([OOD_NAME] if OOD_NAME in {o.name for o in proto.graph.output}
                              else [])
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            half = convert_float_to_float16(proto, keep_io_types=True)
        low = _run(half.SerializeToString(), inputs, outputs, optimise=False)
        full = _run(proto.SerializeToString(), inputs, outputs)
    except Exception as err:  # ORT/converter errors are untyped: recorded, not fatal
        log.info("fp16 parity unmeasured: %s", err)
        return {"status": "unmeasured", "why": f"{type(err).__name__}: {str(err)[:200]}"}
    parity = {"max_abs_diff": float(np.max(np.abs(low[0] - full[0]))), "images": len(inputs),
              "how": HOW}
    if len(outputs) == 2:
        scale = np.maximum(np.abs(full[1]), 1e-6)
        rel = np.abs(low[1] - full[1]) / scale
        parity["ood_max_rel_diff"] = float(np.nan_to_num(rel, nan=np.inf).max())
    return parity


def allowed_precision(parity: dict) -> str:
    """``fp16`` when the measured parity is within :data:`FP16_MAX_ABS_DIFF` (and the OOD
    score within :data:`OOD_MAX_REL_DIFF`), else ``fp32`` (also when unmeasured)."""
    if "max_abs_diff" not in parity or not parity["max_abs_diff"] <= FP16_MAX_ABS_DIFF:
        return "fp32"
    if not parity.get("ood_max_rel_diff", 0.0) <= OOD_MAX_REL_DIFF:
        return "fp32"
    return "fp16"
