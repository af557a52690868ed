"""A plain torchvision densenet121/resnet101 state dict (``--format torchvision``)."""

from __future__ import annotations

from pathlib import Path

from chexnet.training.package.formats import TORCHVISION_ARCHS
from chexnet.training.package.safe_load import ImportFormatError, safe_torch_load
from chexnet.training.package.sources.common import (
    IMAGENET_224,
    Converted,
    as_state_dict,
    check_labels,
    densenet,
    fix_densenet_keys,
    resnet101,
    strip,
    thresholds_05,
)


def torchvision_state(src: Path, labels: tuple[str, ...] | None, arch: str) -> Converted:
    if not labels:
        raise ImportFormatError("--format torchvision needs --labels (comma-separated label "
                                "names, one per model output, in output order)")
    if arch.startswith("vgg16"):
        raise ImportFormatError(
            f"--arch {arch} is not supported: torchvision's VGG-16 classifier is a 3-layer "
            "MLP on flattened 7x7 features, but class activation maps need global average "
            "pooling followed by a single linear layer; fine-tune a GAP+linear head "
            "(chexnet-train --arch vgg16_bn) instead")
    if arch not in TORCHVISION_ARCHS:
        raise ImportFormatError(f"unknown --arch {arch!r}; choose densenet121 or resnet101")
    what = f"a torchvision {arch} state dict"
    state = as_state_dict(safe_torch_load(src), src, "torchvision")
    if arch == "densenet121":
        model = densenet(fix_densenet_keys(strip(state, ("module.",))), src, what)
    else:
        model = resnet101(strip(state, ("module.",)), src, what)
    check_labels(labels, model.classifier.out_features, src)
    if not all(labels):
        raise ImportFormatError("--labels: empty label names are only allowed with "
                                "--format torchxrayvision")
    return Converted(
        model, labels, IMAGENET_224, thresholds_05(labels),
        f"Imported from a plain torchvision {arch} state dict (format torchvision): ImageNet "
        "normalisation, 224x224 input.", arch=arch)
