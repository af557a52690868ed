"""One ONNX Runtime session for an engine: providers with their options, the TensorRT engine
cache and its one-time build notice, and the runner that feeds it (:mod:`.io_binding`)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from chexnet.inference.errors import DeviceUnavailableError, ModelPackageError
from chexnet.inference.package.card import INPUT_NAME
from chexnet.inference.package.verify import VerifiedPackage
from chexnet.inference.scoring import trt_cache
from chexnet.inference.scoring.batch_size import AUTO, auto_batch_size
from chexnet.inference.scoring.io_binding import SessionRunner, make_runner
from chexnet.inference.scoring.providers import (
    PROVIDER,
    TENSORRT,
    ProviderSettings,
    on_gpu,
    preload_gpu_libraries,
    provider_options,
    select_providers,
)

log = logging.getLogger(__name__)


@dataclass
class OpenedSession:
    session: Any
    providers: tuple[str, ...]
    batch_size: int
    #: the precision the first provider runs the graph in ("fp16": TensorRT with the card's leave)
    precision: str
    #: TensorRT's engine cache folder (None without TensorRT)
    trt_cache: Path | None = None


def resolve_batch_size(batch_size: int | str, package: VerifiedPackage, gpu: bool) -> int:
    if batch_size == AUTO:
        return auto_batch_size(package.path, gpu)
    return max(1, int(batch_size))


def open_session(package: VerifiedPackage, device: str, batch_size: int | str,
                 options: ort.SessionOptions, cuda_graph: bool = False) -> OpenedSession:
    """The session for ``package`` on ``device`` (see :class:`~.engine.Engine`)."""
    names = select_providers(device)
    batch = resolve_batch_size(batch_size, package, on_gpu(names[0]))
    size = package.card.preprocess.size
    fixed = package.fixed_batch
    fp16 = package.card.precision == "fp16"
    folder = (trt_cache.this_machine_cache_dir(package.sha256)
              if TENSORRT in names else None)
    settings = ProviderSettings(input_shape=(3, size, size), batch_size=batch,
                                fixed_batch=fixed, fp16=fp16, cuda_graph=cuda_graph,
                                trt_cache=folder, input_name=INPUT_NAME)
    notice = None if folder is None else trt_cache.build_notice(
        folder, trt_cache.build_estimate(folder.parent))
    if notice:
        log.warning(notice)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    if on_gpu(names[0]):
        preload_gpu_libraries()
    started = time.perf_counter()
    try:
        session = ort.InferenceSession(str(package.path), options,
                                       providers=provider_options(names, settings))
    except Exception as err:  # onnxruntime raises its own untyped errors
        # ORT's own text stays on the chained exception, out of the message (house rule)
        raise ModelPackageError(package.path, "ONNX Runtime cannot load it "
                                f"({type(err).__name__})") from err
    used = tuple(session.get_providers())
    if device in ("cuda", "tensorrt") and used[0] != PROVIDER[device]:
        raise DeviceUnavailableError(
            f"--device {device}: ONNX Runtime fell back to {used[0]} (CUDA/cuDNN "
            "libraries missing?); use --device cpu or install the CUDA runtime")
    if notice and used[0] == TENSORRT:  # the build happens by the first run at the latest
        session.run(None, {INPUT_NAME: np.zeros((1 if fixed else batch, 3, size, size),
                                                np.float32)})
        seconds = time.perf_counter() - started
        trt_cache.record_build(folder.parent, folder.name, seconds)
        log.warning(trt_cache.built_notice(folder, seconds))
    precision = "fp16" if fp16 and used[0] == TENSORRT else "fp32"
    return OpenedSession(session, used, batch, precision,
                         folder if used[0] == TENSORRT else None)


def runner_for(opened: OpenedSession, outputs: list[str], fixed_batch: bool,
               input_shape: tuple[int, int, int], cuda_graph: bool = False) -> SessionRunner:
    """Plain ``session.run`` on the CPU; IO binding (and fixed buffers for CUDA graphs) on a
    GPU provider."""
    batch = 1 if fixed_batch else opened.batch_size
    return make_runner(opened.session, INPUT_NAME, outputs, gpu=on_gpu(opened.providers[0]),
                       cuda_graph=cuda_graph, batch=batch, input_shape=input_shape)
