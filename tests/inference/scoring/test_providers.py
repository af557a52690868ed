"""Provider selection and options (no GPU needed: the driver probes are replaced), and the
session's TensorRT bookkeeping on a machine without TensorRT."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest

from chexnet.inference.errors import DeviceUnavailableError
from chexnet.inference.package.card import FP16_MAX_ABS_DIFF, ModelCard
from chexnet.inference.scoring import providers
from chexnet.inference.scoring.providers import (
    CPU,
    CUDA,
    TENSORRT,
    ProviderSettings,
    cuda_options,
    provider_options,
    select_providers,
    tensorrt_options,
)
from tests.tiny_model import tiny_card

GPU_BUILD = {CUDA, TENSORRT} <= set(ort.get_available_providers())


@pytest.mark.skipif(not GPU_BUILD, reason="needs the onnxruntime-gpu build (lists CUDA/TRT)")
def test_auto_order_follows_what_the_machine_can_run(monkeypatch):
    monkeypatch.setattr(providers, "gpu_driver", lambda: True)
    monkeypatch.setattr(providers, "tensorrt_runtime", lambda: True)
    assert select_providers("auto") == [TENSORRT, CUDA, CPU]
    assert select_providers("tensorrt") == [TENSORRT, CUDA, CPU]
    assert select_providers("cuda") == [CUDA, CPU]
    monkeypatch.setattr(providers, "tensorrt_runtime", lambda: False)
    assert select_providers("auto") == [CUDA, CPU]
    monkeypatch.setattr(providers, "gpu_driver", lambda: False)
    assert select_providers("auto") == [CPU]
    with pytest.raises(DeviceUnavailableError, match="no NVIDIA GPU driver"):
        select_providers("cuda")


def test_cpu_provider_keeps_onnxruntime_defaults():
    s = ProviderSettings(input_shape=(3, 224, 224))
    assert provider_options([CPU], s) == [CPU]
    listed = provider_options([TENSORRT, CUDA, CPU], s)
    assert [p if isinstance(p, str) else p[0] for p in listed] == [TENSORRT, CUDA, CPU]
    assert listed[1][1] == cuda_options(s)
    assert listed[0][1] == tensorrt_options(s)


def test_cuda_options_search_convolutions_and_capture_graphs_only_when_asked():
    plain = cuda_options(ProviderSettings(input_shape=(3, 224, 224), device_id=1))
    assert plain["cudnn_conv_algo_search"] == "EXHAUSTIVE"
    assert plain["device_id"] == "1"
    assert "enable_cuda_graph" not in plain
    graph = cuda_options(ProviderSettings(input_shape=(3, 224, 224), cuda_graph=True))
    assert graph["enable_cuda_graph"] == "1"


def test_tensorrt_options_cache_profile_and_fp16(tmp_path):
    s = ProviderSettings(input_shape=(3, 320, 300), batch_size=32, fp16=True,
                         trt_cache=tmp_path / "k")
    o = tensorrt_options(s)
    assert o["trt_fp16_enable"] == "True"
    assert o["trt_engine_cache_enable"] == "True"
    assert o["trt_timing_cache_enable"] == "True"
    assert Path(o["trt_engine_cache_path"]) == tmp_path / "k"
    assert Path(o["trt_timing_cache_path"]) == tmp_path / "k"
    # one profile covers every batch the engine sends: 1 .. batch_size
    assert o["trt_profile_min_shapes"] == "image:1x3x320x300"
    assert o["trt_profile_opt_shapes"] == o["trt_profile_max_shapes"] == "image:32x3x320x300"
    fixed = tensorrt_options(ProviderSettings(input_shape=(3, 224, 224), fixed_batch=True))
    assert fixed["trt_fp16_enable"] == "False"
    assert not any(k.startswith("trt_profile") or k.startswith("trt_engine") for k in fixed)


def test_card_precision_round_trips_and_defaults_to_fp32():
    old = tiny_card()
    assert old.precision == "fp32"
    assert old.fp16_parity is None
    parity = {"max_abs_diff": 0.002, "images": 16, "how": "test"}
    card = tiny_card(precision="fp16", fp16_parity=parity)
    again = ModelCard.from_json(card.to_json())
    assert again.precision == "fp16"
    assert again.fp16_parity == parity
    assert parity["max_abs_diff"] <= FP16_MAX_ABS_DIFF
    with pytest.raises(ValueError, match="precision"):
        tiny_card(precision="int8")


def test_gpu_sessions_preload_cuda_libraries_from_pip_packages():
    """onnxruntime-gpu finds CUDA/cuDNN only on the loader path; NVIDIA's pip packages (torch's
    dependencies) are not on it. Checked in fresh interpreters without torch."""
    import subprocess
    import sys

    probe = ("import ctypes, sys\n{pre}\ntry:\n    ctypes.CDLL('libcublasLt.so.13')\n"
             "except OSError:\n    sys.exit(3)\n")
    plain = subprocess.run([sys.executable, "-c", probe.format(pre="")], timeout=60)
    if plain.returncode == 0:
        pytest.skip("CUDA libraries are on the loader path here: nothing to preload")
    done = subprocess.run([sys.executable, "-c", probe.format(
        pre="from chexnet.inference.scoring.providers import preload_gpu_libraries\n"
            "preload_gpu_libraries()")], timeout=60)
    if done.returncode == 3 and not GPU_BUILD:
        pytest.skip("no onnxruntime-gpu / NVIDIA pip libraries here")
    assert done.returncode == 0
