"""Which ONNX Runtime execution providers an engine asks for, and with which options.

Provider order is TensorRT -> CUDA -> CPU, keeping those that can actually run here
(``onnxruntime-gpu`` lists the CUDA providers even on machines without a GPU, so the NVIDIA driver
is probed too). ``device="cuda"`` or ``"tensorrt"`` fails loudly when unavailable instead of
silently running on the CPU.

Options (:func:`provider_options`; ONNX Runtime's names, documented in its CUDA and TensorRT
execution provider pages):

- CUDA: ``cudnn_conv_algo_search=EXHAUSTIVE`` (cuDNN times every convolution algorithm once per
  input shape and keeps the fastest: a screening run scores thousands of same-shaped batches),
  ``cudnn_conv_use_max_workspace=1``; ``enable_cuda_graph=1`` only when asked for (a captured
  graph needs one fixed batch shape and inputs/outputs at fixed device addresses, which
  :class:`~chexnet.inference.scoring.io_binding.FixedBatchRunner` provides).
- TensorRT: an engine cache and a timing cache in a folder keyed by package, TensorRT version and
  GPU (:mod:`~chexnet.inference.scoring.trt_cache`), fp16 only when the card allows it
  (``precision: fp16``), one optimisation profile from batch 1 to the engine's batch size (one
  engine build covers every batch the engine sends).

No ONNX Runtime import at module level: the CLI parser imports :data:`DEVICES`.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.errors import DeviceUnavailableError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
PROVIDER = {"cpu": CPU, "cuda": CUDA, "tensorrt": TENSORRT}
#: cuDNN's convolution algorithm choice (EXHAUSTIVE: time them all once per shape).
CONV_ALGO_SEARCH = "EXHAUSTIVE"
#: TensorRT builder workspace (bytes): enough for DenseNet-121's tactics at batch 128.
TRT_WORKSPACE_BYTES = 4 * 1024**3
#: The TensorRT runtime's shared library, newest first (probe and version read share it).
TENSORRT_LIBRARIES = ("libnvinfer.so.10", "libnvinfer.so.8", "nvinfer_10.dll")


def loadable(*names: str) -> bool:
    """Whether one of the shared libraries ``names`` loads (a driver/runtime probe)."""
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def nvidia_smi(fields: str, device_id: int | None = 0, units: bool = True) -> str | None:
    """``nvidia-smi --query-gpu=FIELDS`` as CSV without header (one GPU, or all with
    ``device_id=None``), or None without nvidia-smi or when it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    fmt = "csv,noheader" if units else "csv,noheader,nounits"
    command = [exe, f"--query-gpu={fields}", f"--format={fmt}"]
    if device_id is not None:
        command += ["-i", str(device_id)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def gpu_driver() -> bool:
    return loadable("libcuda.so.1", "nvcuda.dll")


def tensorrt_runtime() -> bool:
    return loadable(*TENSORRT_LIBRARIES)


def select_providers(device: str = "auto") -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return [CPU]
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    gpu = gpu_driver()
    if device == "auto":
        wanted = []
        if gpu and TENSORRT in available and tensorrt_runtime():
            wanted.append(TENSORRT)
        if gpu and CUDA in available:
            wanted.append(CUDA)
        return [*wanted, CPU]
    provider = PROVIDER[device]
    if provider not in available:
        raise DeviceUnavailableError(
            f"--device {device}: this onnxruntime build has no {provider} "
            f"(it has {', '.join(sorted(available))}); install onnxruntime-gpu")
    if not gpu:
        raise DeviceUnavailableError(f"--device {device}: no NVIDIA GPU driver found on this "
                                     "machine; use --device cpu or auto")
    if device == "tensorrt":  # TensorRT hands the nodes it cannot build to CUDA, then the CPU
        return [provider, CUDA, CPU]
    return [provider, CPU]


@dataclass(frozen=True)
class ProviderSettings:
    """What the provider options depend on.

    ``input_shape``: one input's (channels, height, width); ``batch_size``: the most inputs per
    run call; ``fixed_batch``: the graph's batch dimension is a number (no profile then);
    ``fp16``: the card allows fp16 (TensorRT only); ``cuda_graph``: capture CUDA graphs (fixed
    batch shape, bound device buffers); ``trt_cache``: TensorRT's cache folder.
    """

    input_shape: tuple[int, int, int]
    batch_size: int = 8
    fixed_batch: bool = False
    fp16: bool = False
    cuda_graph: bool = False
    trt_cache: Path | None = None
    device_id: int = 0
    input_name: str = "image"


def cuda_options(s: ProviderSettings) -> dict[str, str]:
    options = {"device_id": str(s.device_id), "cudnn_conv_algo_search": CONV_ALGO_SEARCH,
               "cudnn_conv_use_max_workspace": "1"}
    if s.cuda_graph:
        options["enable_cuda_graph"] = "1"
    return options


def tensorrt_options(s: ProviderSettings) -> dict[str, str]:
    options = {"device_id": str(s.device_id), "trt_fp16_enable": str(s.fp16),
               "trt_max_workspace_size": str(TRT_WORKSPACE_BYTES)}
    if s.trt_cache is not None:
        folder = str(s.trt_cache)
        options |= {"trt_engine_cache_enable": "True", "trt_engine_cache_path": folder,
                    "trt_timing_cache_enable": "True", "trt_timing_cache_path": folder}
    if s.cuda_graph:
        options["trt_cuda_graph_enable"] = "True"
    if not s.fixed_batch:
        c, h, w = s.input_shape
        shape = f"{s.input_name}:{{}}x{c}x{h}x{w}"
        options |= {"trt_profile_min_shapes": shape.format(1),
                    "trt_profile_opt_shapes": shape.format(s.batch_size),
                    "trt_profile_max_shapes": shape.format(s.batch_size)}
    return options


def provider_options(providers: list[str], settings: ProviderSettings
                     ) -> list[str | tuple[str, dict[str, str]]]:
    """``providers`` with their options, as ``InferenceSession(providers=...)`` takes them (the
    CPU provider keeps ONNX Runtime's defaults: the CPU path is what it always was)."""
    make = {CUDA: cuda_options, TENSORRT: tensorrt_options}
    return [(p, make[p](settings)) if p in make else p for p in providers]


def on_gpu(provider: str) -> bool:
    return provider in (CUDA, TENSORRT)


def preload_gpu_libraries() -> None:
    """Load the CUDA and cuDNN libraries from NVIDIA's pip packages (what ``pip install``
    brings with torch) before a GPU session: ``onnxruntime-gpu`` looks for them only on the
    loader path, and without this fails with "libcublasLt.so.13: cannot open shared object
    file" (found on this machine) and falls back to the CPU. Missing ones are skipped."""
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):  # onnxruntime >= 1.21
        try:
            ort.preload_dlls(msvc=False)
        except Exception as err:  # a failed preload leaves ORT's own search, which reports it
            log.debug("onnxruntime.preload_dlls: %s", err)
