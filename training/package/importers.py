"""Convert public CheXNet-style weights into chexnet model packages (``chexnet import``).

Every source becomes a :class:`~chexnet.training.fit.cam_model.CamClassifier` (features -> GAP ->
linear), the head CAMs need, and is exported with
:func:`~chexnet.training.package.export.export_package` (which checks ONNX Runtime against
torch). Files are only read through :mod:`.safe_load`, which refuses to unpickle code. Each
source's reader (:mod:`.sources`) sets the card's preprocessing and test-time augmentation to
the source's own, so ``chexnet predict`` scores as the source does by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chexnet.inference.package.card import ModelCard
from chexnet.inference.package.hashing import sha256_file
from chexnet.inference.preprocessing import PreprocessSpec, preprocess
from chexnet.training.fit.cam_model import CamClassifier
from chexnet.training.package.export import ExportReport, export_package
from chexnet.training.package.formats import FORMATS
from chexnet.training.package.safe_load import ImportFormatError
from chexnet.training.package.sources.chexnet14 import arnoweng, reproduce_chexnet
from chexnet.training.package.sources.common import NO_THRESHOLDS_RULE, Converted
from chexnet.training.package.sources.torchvision_sd import torchvision_state
from chexnet.training.package.sources.xrv import torchxrayvision
from chexnet.training.package.sources.xrv_releases import XRV_PATHOLOGIES

__all__ = ["NO_THRESHOLDS_RULE", "XRV_PATHOLOGIES", "ImportOptions", "check_inputs", "convert",
           "import_weights"]


@dataclass(frozen=True)
class ImportOptions:
    """``fmt``: one of :data:`~.formats.FORMATS`. ``variant``: torchxrayvision's weights name
    (e.g. ``"densenet121-res224-nih"``, see :mod:`.sources.xrv_releases`); None: found from the
    file name. ``labels``: one name per output (None: the format's own)."""

    fmt: str
    labels: tuple[str, ...] | None = None
    arch: str = "densenet121"
    name: str | None = None
    version: str = "imported"
    demo: bool = True
    description: str = ""
    variant: str | None = None


def import_weights(src: Path, out: Path, opts: ImportOptions
                   ) -> tuple[ExportReport, ModelCard]:
    """Convert ``src`` and export it to ``out``, checked against torch on synthetic images."""
    model, card = convert(src, opts)
    torch.manual_seed(0)
    report = export_package(model, card, out, check_inputs=check_inputs(card.preprocess))
    return report, card


def _read(src: Path, opts: ImportOptions) -> Converted:
    if opts.variant and opts.fmt != "torchxrayvision":
        raise ImportFormatError("--variant names a torchxrayvision release; it needs "
                                "--format torchxrayvision")
    if opts.fmt == "arnoweng":
        return arnoweng(src, opts.labels, opts.fmt)
    if opts.fmt == "reproduce-chexnet":
        return reproduce_chexnet(src, opts.labels, opts.fmt)
    if opts.fmt == "torchxrayvision":
        return torchxrayvision(src, opts.labels, opts.variant)
    return torchvision_state(src, opts.labels, opts.arch)


def convert(src: Path, opts: ImportOptions) -> tuple[CamClassifier, ModelCard]:
    """Read ``src`` in format ``opts.fmt``; return the CAM model and its card."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: file not found")
    if opts.fmt not in FORMATS:
        raise ImportFormatError(f"unknown format {opts.fmt!r}; choose one of {', '.join(FORMATS)}")
    c = _read(src, opts)
    description = f"{opts.description} {c.description}" if opts.description else c.description
    card = ModelCard(
        name=opts.name or f"imported-{opts.fmt}", version=opts.version, labels=c.labels,
        preprocess=c.spec, thresholds=c.thresholds, threshold_rule=c.rule, demo=opts.demo,
        arch=c.arch, description=description, tta=c.tta,
        training_data={"note": f"not recorded: weights imported from format {opts.fmt}; see "
                               "the source's documentation"},
        extra={"source_format": opts.fmt, "source_sha256": sha256_file(src),
               "source_file": src.name, **(c.extra or {})})
    return c.model.eval(), card


def check_inputs(spec: PreprocessSpec, n: int = 2, seed: int = 0) -> np.ndarray:
    """Synthetic 8-bit radiograph-like images through the package's own preprocessing, so the
    ORT-vs-torch check sees the input range the model will get."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:300, 0:260] / 300.0
    out = []
    for i in range(n):
        img = 128 + 80 * np.sin(3 * xx + i) * np.cos(2 * yy) + rng.normal(0, 20, xx.shape)
        out.append(preprocess(np.clip(img, 0, 255).astype(np.uint8), spec)[0])
    return np.stack(out).astype(np.float32)
