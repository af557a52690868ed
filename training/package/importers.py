"""Convert public CheXNet-style weights into chexnet model packages (``chexnet import``).

Every source becomes a :class:`~chexnet.training.fit.cam_model.CamClassifier` (features -> GAP ->
linear), the head CAMs need, and is exported with
:func:`~chexnet.training.package.export.export_package` (which checks ONNX Runtime against
torch). Files are only read through :mod:`.safe_load`, which refuses to unpickle code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models import densenet as tv_densenet

from chexnet.inference.package.card import CHESTXRAY14_LABELS, ModelCard
from chexnet.inference.package.hashing import sha256_file
from chexnet.inference.preprocessing import PreprocessSpec, preprocess
from chexnet.training.fit.cam_model import CamClassifier, rename_old_densenet_keys
from chexnet.training.package.export import ExportReport, export_package
from chexnet.training.package.formats import FORMATS, TORCHVISION_ARCHS
from chexnet.training.package.safe_load import (
    WHOLE_DENSENET_GLOBALS,
    XRV_WHOLE_GLOBALS,
    ImportFormatError,
    module_state,
    safe_torch_load,
)

#: torchxrayvision's default 18 pathologies, in its output order.
XRV_PATHOLOGIES = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema",
    "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass",
    "Hernia", "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum",
)

NO_THRESHOLDS_RULE = "not provided by the source: 0.5"
IMAGENET_224 = PreprocessSpec(size=224, resize=224)


@dataclass(frozen=True)
class ImportOptions:
    fmt: str
    labels: tuple[str, ...] | None = None
    arch: str = "densenet121"
    name: str | None = None
    version: str = "imported"
    demo: bool = True
    description: str = ""


@dataclass(frozen=True)
class _Converted:
    """One format's reading of the file: the model and what its card needs."""

    model: CamClassifier
    labels: tuple[str, ...]
    spec: PreprocessSpec
    thresholds: dict[str, float]
    description: str
    rule: str = NO_THRESHOLDS_RULE
    arch: str = "densenet121"


def import_weights(src: Path, out: Path, opts: ImportOptions
                   ) -> tuple[ExportReport, ModelCard]:
    """Convert ``src`` and export it to ``out``, checked against torch on synthetic images."""
    model, card = convert(src, opts)
    torch.manual_seed(0)
    report = export_package(model, card, out, check_inputs=check_inputs(card.preprocess))
    return report, card


def convert(src: Path, opts: ImportOptions) -> tuple[CamClassifier, ModelCard]:
    """Read ``src`` in format ``opts.fmt``; return the CAM model and its card."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: file not found")
    if opts.fmt not in FORMATS:
        raise ImportFormatError(f"unknown format {opts.fmt!r}; choose one of {', '.join(FORMATS)}")
    reader = {"arnoweng": _arnoweng, "reproduce-chexnet": _reproduce_chexnet,
              "torchxrayvision": _torchxrayvision, "torchvision": _torchvision}[opts.fmt]
    c = reader(src, opts)
    description = f"{opts.description} {c.description}" if opts.description else c.description
    card = ModelCard(
        name=opts.name or f"imported-{opts.fmt}", version=opts.version, labels=c.labels,
        preprocess=c.spec, thresholds=c.thresholds, threshold_rule=c.rule, demo=opts.demo,
        arch=c.arch, description=description,
        training_data={"note": f"not recorded: weights imported from format {opts.fmt}; see "
                               "the source's documentation"},
        extra={"source_format": opts.fmt, "source_sha256": sha256_file(src),
               "source_file": src.name})
    return c.model.eval(), card


def _arnoweng(src: Path, opts: ImportOptions) -> _Converted:
    what = "an arnoweng/CheXNet model.pth.tar (DataParallel DenseNet-121, 14 classes)"
    state = _as_state_dict(safe_torch_load(src), src, opts.fmt)
    state = _fix_densenet_keys(_strip(state, ("module.", "densenet121.")))
    model = _densenet(state, src, what)
    labels = opts.labels or CHESTXRAY14_LABELS
    _check_labels(labels, model.classifier.out_features, src)
    return _Converted(
        model, labels, PreprocessSpec(size=224, resize=256), _thresholds_05(labels),
        "Imported from the arnoweng/CheXNet PyTorch reimplementation (model.pth.tar, format "
        "arnoweng). The source resized to 256 and averaged predictions over ten 224 crops "
        "(TenCrop); this package uses the single centre 224 crop, so scores can differ "
        "slightly from the source's.")


def _reproduce_chexnet(src: Path, opts: ImportOptions) -> _Converted:
    what = "a reproduce-chexnet checkpoint (a dict with a whole pickled DenseNet-121)"
    obj = safe_torch_load(src, WHOLE_DENSENET_GLOBALS)
    net = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(net, tv_densenet.DenseNet):
        raise ImportFormatError(f"{src}: not {what}: no DenseNet under 'model'; check --format")
    model = _densenet(_fix_densenet_keys(module_state(net)), src, what)
    labels = opts.labels or CHESTXRAY14_LABELS
    _check_labels(labels, model.classifier.out_features, src)
    return _Converted(
        model, labels, IMAGENET_224, _thresholds_05(labels),
        "Imported from a reproduce-chexnet `checkpoint` (format reproduce-chexnet): torchvision "
        "DenseNet-121, ImageNet normalisation, 224x224 input.")


def _torchxrayvision(src: Path, opts: ImportOptions) -> _Converted:
    what = "a torchxrayvision DenseNet-121 state dict (1 channel, 18 outputs, op_threshs)"
    obj = safe_torch_load(src, XRV_WHOLE_GLOBALS)
    if isinstance(obj, nn.Module):  # a released file: the whole pickled xrv DenseNet
        obj = _fix_densenet_keys(module_state(obj))
    state = _as_state_dict(obj, src, opts.fmt)
    op = state.pop("op_threshs", None)
    if op is None:
        raise ImportFormatError(f"{src}: not {what} (no op_threshs); check --format")
    model = _densenet(state, src, what, in_channels=1)
    full = opts.labels or XRV_PATHOLOGIES
    _check_labels(full, model.classifier.out_features, src)
    if op.numel() != len(full):
        raise ImportFormatError(f"{src}: op_threshs has {op.numel()} entries, the "
                                f"classifier {len(full)} outputs")
    keep = [i for i, lb in enumerate(full) if lb]
    if not keep:
        raise ImportFormatError("--labels: every entry is empty; nothing to import")
    _keep_outputs(model, keep)
    labels = tuple(full[i] for i in keep)
    op = op.double().tolist()
    thresholds = {full[i]: float(op[i]) for i in keep if math.isfinite(op[i])}
    return _Converted(
        model, labels,
        PreprocessSpec(size=224, resize=224, channels=1, mean=(0.5,), std=(1 / 2048,)),
        thresholds,
        "Imported from torchxrayvision DenseNet-121 weights (format torchxrayvision): 1-channel "
        "input scaled to [-1024, 1024]. The package outputs plain sigmoid probabilities "
        "(torchxrayvision's op_norm recalibration is not applied); op_threshs are the card's "
        f"thresholds. Unused outputs dropped: {18 - len(keep)}.",
        rule=("torchxrayvision's op_threshs (per-output operating points shipped with the "
              "weights)" + ("" if len(thresholds) == len(labels) else
                            "; labels without a finite op_threshs use 0.5")))


def _torchvision(src: Path, opts: ImportOptions) -> _Converted:
    if not opts.labels:
        raise ImportFormatError("--format torchvision needs --labels (comma-separated label "
                                "names, one per model output, in output order)")
    if opts.arch.startswith("vgg16"):
        raise ImportFormatError(
            f"--arch {opts.arch} is not supported: torchvision's VGG-16 classifier is a 3-layer "
            "MLP on flattened 7x7 features, but class activation maps need global average "
            "pooling followed by a single linear layer; fine-tune a GAP+linear head "
            "(chexnet-train --arch vgg16_bn) instead")
    if opts.arch not in TORCHVISION_ARCHS:
        raise ImportFormatError(f"unknown --arch {opts.arch!r}; choose densenet121 or "
                                "resnet101")
    arch = opts.arch
    what = f"a torchvision {arch} state dict"
    state = _as_state_dict(safe_torch_load(src), src, opts.fmt)
    if arch == "densenet121":
        model = _densenet(_fix_densenet_keys(_strip(state, ("module.",))), src, what)
    else:
        model = _resnet101(_strip(state, ("module.",)), src, what)
    labels = opts.labels
    _check_labels(labels, model.classifier.out_features, src)
    if not all(labels):
        raise ImportFormatError("--labels: empty label names are only allowed with "
                                "--format torchxrayvision")
    return _Converted(
        model, labels, IMAGENET_224, _thresholds_05(labels),
        f"Imported from a plain torchvision {arch} state dict (format torchvision): ImageNet "
        "normalisation, 224x224 input.", arch=arch)


def _as_state_dict(obj: object, path: Path, fmt: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ImportFormatError(f"{path}: not a {fmt} state dict (expected a dict of tensors"
                                f"{' under state_dict' if fmt == 'arnoweng' else ''})")
    return dict(obj)


def _strip(state: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict:
    out = {}
    for key, value in state.items():
        for p in prefixes:
            if key.startswith(p):
                key = key[len(p):]
        out[key] = value
    return out


def _fix_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old torch key names, and a Linear+Sigmoid classifier's ``classifier.0.`` prefix."""
    return {re.sub(r"^classifier\.0\.", "classifier.", key): value
            for key, value in rename_old_densenet_keys(state).items()}


def _load_strict(net: nn.Module, state: dict, path: Path, what: str) -> None:
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        line = next((s.strip() for s in str(err).splitlines() if "size mismatch" in s),
                    str(err).splitlines()[0])
        raise ImportFormatError(f"{path}: not {what} ({line}); check --format") from None
    # Files from torch < 0.4 lack BatchNorm's num_batches_tracked; it is unused in eval.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        eg = ", ".join((missing + unexpected)[:2])
        raise ImportFormatError(f"{path}: not {what} ({len(missing)} missing, "
                                f"{len(unexpected)} unexpected keys, e.g. {eg}); check --format")


def _densenet(state: dict, path: Path, what: str, in_channels: int = 3) -> CamClassifier:
    if "classifier.weight" not in state or state["classifier.weight"].ndim != 2:
        raise ImportFormatError(f"{path}: not {what} (no linear classifier.weight); "
                                "check --format")
    n_out = state["classifier.weight"].shape[0]
    net = torchvision.models.densenet121(weights=None, num_classes=n_out)
    if in_channels != 3:
        net.features.conv0 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3,
                                       bias=False)
    _load_strict(net, state, path, what)
    model = CamClassifier(net.features, net.classifier.in_features, n_out)
    model.classifier = net.classifier
    return model


def _resnet101(state: dict, path: Path, what: str) -> CamClassifier:
    if "fc.weight" not in state:
        raise ImportFormatError(f"{path}: not {what} (no fc.weight); check --arch")
    n_out = state["fc.weight"].shape[0]
    net = torchvision.models.resnet101(weights=None, num_classes=n_out)
    _load_strict(net, state, path, what)
    body = nn.Sequential(*(getattr(net, n) for n in (
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")))
    model = CamClassifier(body, net.fc.in_features, n_out)
    model.classifier = net.fc
    return model


def _check_labels(labels: tuple[str, ...], n_out: int, path: Path) -> None:
    if len(labels) != n_out:
        raise ImportFormatError(f"{path}: the model has {n_out} outputs but {len(labels)} labels "
                                "were given (--labels, comma-separated, one per output in order)")
    named = [lb for lb in labels if lb]
    if len(set(named)) != len(named):
        raise ImportFormatError("--labels: duplicate label names")


def _thresholds_05(labels: tuple[str, ...]) -> dict[str, float]:
    return {lb: 0.5 for lb in labels}


def _keep_outputs(model: CamClassifier, keep: list[int]) -> None:
    old = model.classifier
    new = nn.Linear(old.in_features, len(keep))
    with torch.no_grad():
        new.weight.copy_(old.weight[keep])
        new.bias.copy_(old.bias[keep])
    model.classifier = new


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
