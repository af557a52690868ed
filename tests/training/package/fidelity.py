"""How close an imported package scores to its source: shared by test_import_fidelity.py and
benchmarks/import_fidelity.py.

For each source, a seeded model shaped as the source's is saved as the source saved its release
(legacy format), imported with ``chexnet import``'s defaults (no flags), and compared on NIH
images with the source's own forward on the source's own preprocessing (:mod:`.source_models`):

- conversion: the source's input tensor through the source model vs through the ONNX package;
- end to end: the source's scores (its preprocessing, its test-time augmentation) vs
  ``Engine.predict`` on the decoded image (the package's preprocessing and card TTA);
- CAM: the package's CAMs on the source's input vs CAMs computed independently from the source
  model's feature map and classifier weights, relative to the largest |CAM|.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chexnet.inference import Engine, load_image
from chexnet.training.package.importers import ImportOptions, import_weights
from chexnet.training.package.sources.xrv_releases import RELEASES
from tests.training.package.source_models import (
    arnoweng_checkpoint,
    arnoweng_input,
    chexnet_densenet,
    reproduce_input,
    save_legacy,
    save_reproduce_2018,
    save_xrv_release,
    spread_outputs,
    xrv_densenet,
    xrv_input,
)

XRV_NIH = RELEASES["densenet121-res224-nih"]


@dataclass
class Source:
    name: str
    fmt: str
    file: Path
    net: nn.Module
    classifier: nn.Linear
    source_input: Callable[[Path], torch.Tensor]
    keep: list[int]  # source outputs the package keeps, in the package's order
    package: Path | None = None


@dataclass
class Figures:
    source: str
    n_images: int
    conversion: float  # max |Δp|, same input tensor
    end_to_end: float  # max |Δp|, each side's own preprocessing and TTA
    cam_conversion: float  # max |ΔCAM| / max |CAM|, same input tensor
    tta: str
    preprocessing: str


def build_sources(folder: Path, calib_images: list[Path], which: tuple[str, ...]
                  ) -> dict[str, Source]:
    """Seeded models saved as each source's release file in ``folder``; their classifiers are
    rescaled on ``calib_images`` so the probabilities spread over (0, 1)."""
    out = {}
    if {"arnoweng", "reproduce-chexnet"} & set(which):
        net = chexnet_densenet(0)
        spread_outputs(net, net.classifier[0],
                       torch.cat([reproduce_input(p) for p in calib_images]))
        if "arnoweng" in which:
            out["arnoweng"] = Source("arnoweng/CheXNet", "arnoweng",
                                     save_legacy(arnoweng_checkpoint(net),
                                                 folder / "model.pth.tar"),
                                     net, net.classifier[0], arnoweng_input, list(range(14)))
        if "reproduce-chexnet" in which:
            out["reproduce-chexnet"] = Source(
                "reproduce-chexnet (2018)", "reproduce-chexnet",
                save_reproduce_2018(net, folder / "checkpoint"), net, net.classifier[0],
                reproduce_input, list(range(14)))
    if "torchxrayvision" in which:
        xnet = xrv_densenet(1, XRV_NIH.labels)
        spread_outputs(xnet, xnet.classifier, torch.cat([xrv_input(p) for p in calib_images]))
        out["torchxrayvision"] = Source(
            "torchxrayvision densenet121-res224-nih", "torchxrayvision",
            save_xrv_release(xnet, folder / XRV_NIH.file), xnet, xnet.classifier, xrv_input,
            list(range(14)))
    return out


def import_all(sources: dict[str, Source], folder: Path) -> None:
    for key, src in sources.items():
        src.package = folder / f"{key}.onnx"
        import_weights(src.file, src.package, ImportOptions(fmt=src.fmt))


def _source_probs_and_cams(src: Source, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        probs = src.net(x)[:, src.keep]
        feats = torch.relu(src.net.features(x))
        cams = torch.einsum("ck,nkhw->nchw", src.classifier.weight[src.keep], feats)
    return probs.double().numpy(), cams.double().numpy()


def measure(src: Source, images: list[Path]) -> Figures:
    engine = Engine(src.package, device="cpu")
    spec = engine.card.preprocess
    conv = e2e = cam = 0.0
    for path in images:
        x = src.source_input(path)
        p_src, cam_src = _source_probs_and_cams(src, x)
        raw = engine.run(x.numpy())
        conv = max(conv, float(np.abs(raw.probs - p_src).max()))
        cam = max(cam, float(np.abs(raw.cams - cam_src).max() / np.abs(cam_src).max()))
        ours = engine.predict([load_image(path)])[0].probabilities
        e2e = max(e2e, float(np.abs(ours - p_src.mean(axis=0)).max()))
    std = tuple(round(s, 5) for s in spec.std)
    how = (f"{spec.crop}, {spec.interpolation}, resize {spec.resize}, crop {spec.size}, "
           f"{spec.channels} channel(s), mean {spec.mean}, std {std}")
    return Figures(src.name, len(images), conv, e2e, cam, engine.card.tta, how)
