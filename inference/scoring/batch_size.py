"""``--batch-size auto``: the largest batch whose activations fit a memory budget.

The estimate (:func:`activation_bytes`) sums the sizes of every tensor the graph computes for
one input (ONNX shape inference at batch 1, fp32): an upper bound, since ONNX Runtime's memory
planner reuses buffers. The budget is a share of what is free now: on a GPU, device memory from
``nvidia-smi`` less the weights and a cuDNN/TensorRT workspace; on the CPU, the kernel's
``MemAvailable``, of which the engine takes a quarter (decode workers and the rest of the
machine need the remainder). Batches are powers of two (what cuDNN and TensorRT tune for, and
what a TensorRT profile is built at), at most :data:`MAX_AUTO_BATCH`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from chexnet.inference.scoring.providers import nvidia_smi, on_gpu, select_providers

AUTO = "auto"
MAX_AUTO_BATCH = 128
GPU_BUDGET_FRACTION = 0.8
CPU_BUDGET_FRACTION = 0.25
#: Device memory set aside for cuDNN/TensorRT workspaces and ORT's arena growth.
GPU_WORKSPACE_BYTES = 2 * 1024**3


def batch_size_arg(text: str) -> int | str:
    """argparse type of ``--batch-size``: a positive integer or ``auto``."""
    if text.strip().lower() == AUTO:
        return AUTO
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', not {text!r}")
    return value


def largest_batch(per_input_bytes: int, fixed_bytes: int, budget_bytes: int,
                  max_batch: int = MAX_AUTO_BATCH) -> int:
    """The largest power of two ``b <= max_batch`` with ``fixed + b * per_input <= budget``;
    1 when even that does not fit (the engine then runs one input at a time)."""
    if per_input_bytes <= 0:
        raise ValueError("per_input_bytes must be positive")
    room = (budget_bytes - fixed_bytes) // per_input_bytes
    if room < 1:
        return 1
    return 2 ** int(math.log2(min(room, max_batch)))


def activation_bytes(model_path: str | Path, bytes_per_value: int = 4) -> int:
    """Sum of the sizes of all tensors the graph computes for one input (an upper bound on
    its activation memory), from ONNX shape inference at batch 1."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model)
    total = 0
    graph = inferred.graph
    for value in [*graph.value_info, *graph.output, *graph.input]:
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            total += math.prod(d.dim_value for d in dims)
    return max(total, 1) * bytes_per_value


def gpu_free_bytes(device_id: int = 0) -> int | None:
    """Free device memory now (``nvidia-smi``), or None without one."""
    text = nvidia_smi("memory.free", device_id, units=False)
    try:
        return None if text is None else int(text.split()[0]) * 1024**2
    except (ValueError, IndexError):
        return None


def parse_meminfo(text: str) -> int | None:
    """``MemAvailable`` of a /proc/meminfo text, in bytes."""
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def cpu_available_bytes() -> int | None:
    try:
        return parse_meminfo(Path("/proc/meminfo").read_text())
    except OSError:
        return None


def memory_budget(gpu: bool, weights_bytes: int, device_id: int = 0) -> tuple[int, int] | None:
    """(budget, fixed part) in bytes for the engine's device, or None when unknown."""
    if gpu:
        free = gpu_free_bytes(device_id)
        return None if free is None else (int(free * GPU_BUDGET_FRACTION),
                                          weights_bytes + GPU_WORKSPACE_BYTES)
    free = cpu_available_bytes()
    return None if free is None else (int(free * CPU_BUDGET_FRACTION), weights_bytes)


def auto_batch_size(model_path: str | Path, gpu: bool, *, device_id: int = 0,
                    fallback: int = 8) -> int:
    """``--batch-size auto`` for ``model_path`` on the GPU (``gpu``) or the CPU; ``fallback``
    when the free memory cannot be read."""
    budget = memory_budget(gpu, Path(model_path).stat().st_size, device_id)
    if budget is None:
        return fallback
    return largest_batch(activation_bytes(model_path), budget[1], budget[0])


def resolve_for_command(batch_size: int | str, model: str | None, device: str) -> int:
    """``--batch-size`` of a command that builds its engine later (``chexnet screen``): an
    integer as given, ``auto`` resolved for ``model`` on the first provider ``device`` gets."""
    if batch_size != AUTO:
        return int(batch_size)
    from chexnet.inference.package.lookup import resolve_model

    return auto_batch_size(resolve_model(model).path, on_gpu(select_providers(device)[0]))
