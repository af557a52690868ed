"""Backbones with a CAM head: ``probs`` and ``cams`` from one forward pass.

The classifier is global average pooling + one linear layer (+ sigmoid), as in CheXNet; that is
what makes ``CAM_c = sum_k w_ck f_k`` exact (Zhou et al. 2016): the class score is the spatial
mean of its CAM plus the bias. The same head sits on DenseNet-121, ResNet-101 and VGG-16 so every
backbone exports with CAMs.

Single-label models (the hospital CAD paper's single-disease task) end in a softmax instead of
the sigmoid, inside the graph, so the exported ``probs`` are already class probabilities and the
engine needs no task-specific code; the CAMs are the same per-class ``W f`` maps.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torchvision
from torch import nn

ARCHS = ("densenet121", "resnet101", "vgg16", "vgg16_bn")
TASKS = ("multi-label", "single-label")


class CamClassifier(nn.Module):
    """``features`` (ending in a ReLU'd map) -> GAP -> linear -> sigmoid (multi-label) or
    softmax (single-label), plus in-graph CAMs."""

    def __init__(self, features: nn.Module, n_features: int, n_classes: int,
                 task: str = "multi-label") -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
        self.features = features
        self.classifier = nn.Linear(n_features, n_classes)
        self.task = task  # not a parameter: checkpoints of both tasks have the same keys

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> probabilities: sigmoid per label, or softmax over the labels."""
        if self.task == "single-label":
            return torch.softmax(logits, dim=1)
        return torch.sigmoid(logits)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.features(x))

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        """Logits from the final feature map."""
        return self.classifier(f.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (training uses BCE-with-logits on these)."""
        return self.forward_head(self.forward_features(x))

    def probs_and_cams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.forward_features(x)
        probs = self.activation(self.forward_head(f))
        cams = torch.einsum("ck,nkhw->nchw", self.classifier.weight, f)
        return probs, cams


class ExportWrapper(nn.Module):
    """What goes into the ONNX graph: image -> (probs, cams)."""

    def __init__(self, model: CamClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.probs_and_cams(image)


class InitWeightsError(FileNotFoundError):
    """The local ImageNet weights file for ``--init imagenet:PATH`` is missing or does not fit."""


# torchvision's own fix-up for DenseNet checkpoints saved with old key names ("norm.1" ->
# "norm1"), as in torchvision.models.densenet._load_state_dict.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$")


def rename_old_densenet_keys(state: dict) -> dict:
    """``state`` with DenseNet keys of old torch versions renamed (``norm.1`` -> ``norm1``);
    ImageNet init files and imported CheXNet weights both need it."""
    fixed = {}
    for key, value in state.items():
        m = _OLD_DENSENET_KEY.match(key)
        fixed[m.group(1) + m.group(2) if m else key] = value
    return fixed


def check_init_file(arch: str, init: Path) -> None:
    """Refuse a missing ImageNet weights file with the advice on where to get it (chexnet never
    downloads); ``chexnet-train`` calls it before any data work."""
    if not Path(init).is_file():
        raise InitWeightsError(
            f"{init}: ImageNet weights file not found. chexnet never downloads at run time: "
            f"fetch torchvision's {arch} ImageNet weights (e.g. {arch}-*.pth from the torchvision "
            "model zoo) on a machine with internet, copy the file here, and pass "
            f"--init imagenet:{init}")


def _torchvision_net(arch: str, init: Path | None) -> nn.Module:
    net = getattr(torchvision.models, arch)(weights=None)
    if init is None:
        return net
    check_init_file(arch, init)
    state = torch.load(init, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    fixed = rename_old_densenet_keys(state)
    head = {"densenet121": "classifier.", "resnet101": "fc.", "vgg16": "classifier.",
            "vgg16_bn": "classifier."}[arch]
    body = {k: v for k, v in fixed.items() if not k.startswith(head)}
    missing, unexpected = net.load_state_dict(body, strict=False)
    missing = [k for k in missing if not k.startswith(head)]
    if missing or unexpected:
        raise InitWeightsError(f"{init}: not a torchvision {arch} state dict ({len(missing)} "
                               f"missing, {len(unexpected)} unexpected keys, e.g. "
                               f"{(missing or unexpected)[0]})")
    return net


def build_model(arch: str, n_classes: int, init: Path | None = None,
                task: str = "multi-label") -> CamClassifier:
    """A backbone with a CAM head: random init, or ImageNet weights from a local torchvision
    state-dict file (``init``); the linear head is always new. ``task`` picks the output
    activation (sigmoid for multi-label, softmax for single-label)."""
    if arch == "densenet121":
        net = _torchvision_net(arch, init)
        return CamClassifier(net.features, net.classifier.in_features, n_classes, task)
    if arch == "resnet101":
        net = _torchvision_net(arch, init)
        body = nn.Sequential(*(getattr(net, n) for n in (
            "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")))
        return CamClassifier(body, net.fc.in_features, n_classes, task)
    if arch in ("vgg16", "vgg16_bn"):
        # vgg16_bn: the same VGG-16 with batch normalisation after each convolution, which
        # trains from scratch where plain VGG-16 does not (benchmarks/bench_backbones.py).
        net = _torchvision_net(arch, init)
        # Drop the last max-pool so the CAM keeps 14x14 resolution at 224 input.
        return CamClassifier(net.features[:-1], 512, n_classes, task)
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
