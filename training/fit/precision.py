"""How a training run computes: autocast dtype, gradient scaler, memory format, compilation.

``--precision auto`` (the default) is the CheXNet recipe's: on CUDA, AMP in bf16 where the GPU
supports it (Ampere and later: no scaler needed, bf16 has fp32's range), else fp16 with a
gradient scaler; on the CPU, fp32, as before. ``bf16`` and ``fp16`` ask for that autocast dtype
on any device (PyTorch's CPU autocast supports both; fp16 gets a scaler), ``fp32`` (or
``--no-amp``) none. channels_last on CUDA only (cuDNN's fast NHWC kernels; on the CPU it changes
nothing measurable for DenseNet and would change the CPU path). ``--compile`` wraps the network
in ``torch.compile`` (Inductor: the first steps compile, minutes for DenseNet-121).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from chexnet.training.fit.config import PRECISIONS

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class AmpPlan:
    enabled: bool
    dtype: torch.dtype
    scaler: bool
    channels_last: bool

    @property
    def name(self) -> str:
        if not self.enabled:
            return "fp32"
        return "bf16" if self.dtype == torch.bfloat16 else "fp16"

    def record(self, compiled: bool) -> dict:
        """run.json's ``precision``: what the run computed in."""
        return {"autocast": self.name, "grad_scaler": self.scaler,
                "channels_last": self.channels_last, "compile": compiled}


def amp_plan(device_type: str, precision: str = "auto", amp: bool = True,
             bf16_supported: bool | None = None) -> AmpPlan:
    """The plan for ``device_type`` ("cuda", "cpu"); ``amp=False`` (``--no-amp``) is fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, not "
                         f"{precision!r}")
    cuda = device_type == "cuda"
    if precision == "auto":
        if cuda and bf16_supported is None:
            bf16_supported = torch.cuda.is_bf16_supported()
        precision = ("bf16" if bf16_supported else "fp16") if cuda else "fp32"
    if not amp or precision == "fp32":
        return AmpPlan(False, torch.float32, False, cuda)
    dtype = _DTYPES[precision]
    return AmpPlan(True, dtype, dtype == torch.float16, cuda)


def maybe_compile(net: torch.nn.Module, compile_it: bool) -> torch.nn.Module:
    """``torch.compile(net)`` when asked (the module's state dict is shared with ``net``)."""
    return torch.compile(net) if compile_it else net
