"""Backbones with a CAM head: ``probs`` and ``cams`` from one forward pass.

The classifier is global average pooling + one linear layer (+ sigmoid), as in CheXNet; that is
what makes ``CAM_c = sum_k w_ck f_k`` exact (Zhou et al. 2016): the class score is the spatial
mean of its CAM plus the bias. The same head sits on DenseNet-121, ResNet-101 and VGG-16 so every
backbone exports with CAMs.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

ARCHS = ("densenet121", "resnet101", "vgg16")


class CamClassifier(nn.Module):
    """``features`` (ending in a ReLU'd map) -> GAP -> linear -> sigmoid, plus in-graph CAMs."""

    def __init__(self, features: nn.Module, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.features = features
        self.classifier = nn.Linear(n_features, n_classes)

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
        probs = torch.sigmoid(self.forward_head(f))
        cams = torch.einsum("ck,nkhw->nchw", self.classifier.weight, f)
        return probs, cams


class ExportWrapper(nn.Module):
    """What goes into the ONNX graph: image -> (probs, cams)."""

    def __init__(self, model: CamClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.probs_and_cams(image)


def build_model(arch: str, n_classes: int) -> CamClassifier:
    """An untrained backbone (random init) with a CAM head; load weights separately."""
    if arch == "densenet121":
        net = torchvision.models.densenet121(weights=None)
        return CamClassifier(net.features, net.classifier.in_features, n_classes)
    if arch == "resnet101":
        net = torchvision.models.resnet101(weights=None)
        body = nn.Sequential(*(getattr(net, n) for n in (
            "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")))
        return CamClassifier(body, net.fc.in_features, n_classes)
    if arch == "vgg16":
        net = torchvision.models.vgg16(weights=None)
        # Drop the last max-pool so the CAM keeps 14x14 resolution at 224 input.
        return CamClassifier(net.features[:-1], 512, n_classes)
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
