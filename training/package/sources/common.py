"""What every source reader shares: the conversion result, state-dict clean-up, building the
CAM model (features -> GAP -> linear) and checking labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.training.fit.cam_model import CamClassifier, rename_old_densenet_keys
from chexnet.training.package.legacy_pickle import ModuleStub
from chexnet.training.package.safe_load import ImportFormatError

NO_THRESHOLDS_RULE = "not provided by the source: 0.5"
IMAGENET_224 = PreprocessSpec(size=224, resize=224)


@dataclass(frozen=True)
class Converted:
    """One format's reading of the file: the model and what its card needs."""

    model: CamClassifier
    labels: tuple[str, ...]
    spec: PreprocessSpec
    thresholds: dict[str, float]
    description: str
    rule: str = NO_THRESHOLDS_RULE
    arch: str = "densenet121"
    tta: str = "none"
    extra: dict | None = None


def as_state_dict(obj: object, path: Path, fmt: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, ModuleStub | nn.Module) or (
            isinstance(obj, dict) and isinstance(obj.get("model"), ModuleStub | nn.Module)):
        raise ImportFormatError(f"{path}: not a state dict (--format {fmt}) but a whole "
                                "pickled model; if it is reproduce-chexnet's `checkpoint`, use "
                                "--format reproduce-chexnet; check --format")
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ImportFormatError(f"{path}: not a state dict (--format {fmt}): expected a dict "
                                "of tensors"
                                f"{' under state_dict' if fmt == 'arnoweng' else ''}")
    return dict(obj)


def strip(state: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict:
    out = {}
    for key, value in state.items():
        for p in prefixes:
            if key.startswith(p):
                key = key[len(p):]
        out[key] = value
    return out


def fix_densenet_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Old torch key names, and a Linear+Sigmoid classifier's ``classifier.0.`` prefix."""
    return {re.sub(r"^classifier\.0\.", "classifier.", key): value
            for key, value in rename_old_densenet_keys(state).items()}


def load_strict(net: nn.Module, state: dict, path: Path, what: str) -> None:
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


def densenet(state: dict, path: Path, what: str, in_channels: int = 3) -> CamClassifier:
    if "classifier.weight" not in state or state["classifier.weight"].ndim != 2:
        raise ImportFormatError(f"{path}: not {what} (no linear classifier.weight); "
                                "check --format")
    n_out = state["classifier.weight"].shape[0]
    net = torchvision.models.densenet121(weights=None, num_classes=n_out)
    if in_channels != 3:
        net.features.conv0 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3,
                                       bias=False)
    load_strict(net, state, path, what)
    model = CamClassifier(net.features, net.classifier.in_features, n_out)
    model.classifier = net.classifier
    return model


def resnet101(state: dict, path: Path, what: str) -> CamClassifier:
    if "fc.weight" not in state:
        raise ImportFormatError(f"{path}: not {what} (no fc.weight); check --arch")
    n_out = state["fc.weight"].shape[0]
    net = torchvision.models.resnet101(weights=None, num_classes=n_out)
    load_strict(net, state, path, what)
    body = nn.Sequential(*(getattr(net, n) for n in (
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")))
    model = CamClassifier(body, net.fc.in_features, n_out)
    model.classifier = net.fc
    return model


def check_labels(labels: tuple[str, ...], n_out: int, path: Path,
                 given: bool = True) -> None:
    """``given``: the labels came from --labels (else from the format's own list)."""
    if len(labels) != n_out:
        if not given:
            raise ImportFormatError(
                f"{path}: the model has {n_out} outputs, but this format has {len(labels)}; "
                "give one name per output with --labels (comma-separated, in order), or check "
                "--format")
        raise ImportFormatError(f"{path}: the model has {n_out} outputs but {len(labels)} labels "
                                "were given (--labels, comma-separated, one per output in order)")
    named = [lb for lb in labels if lb]
    if len(set(named)) != len(named):
        raise ImportFormatError("--labels: duplicate label names")


def thresholds_05(labels: tuple[str, ...]) -> dict[str, float]:
    return dict.fromkeys(labels, 0.5)


def keep_outputs(model: CamClassifier, keep: list[int]) -> None:
    old = model.classifier
    new = nn.Linear(old.in_features, len(keep))
    with torch.no_grad():
        new.weight.copy_(old.weight[keep])
        new.bias.copy_(old.bias[keep])
    model.classifier = new


def class_name(obj: object) -> str:
    """The dotted class name the file gave (a stub's ``source_class``) or the real class's."""
    if isinstance(obj, ModuleStub):
        return type(obj).source_class
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
