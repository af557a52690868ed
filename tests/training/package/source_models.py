"""The peers' models and pipelines, rebuilt for tests with seeded weights.

- Models shaped as the sources' own and saved as their code saves them: arnoweng's
  DataParallel state dict, reproduce-chexnet's ``{"model": <whole DenseNet>}`` (with a 2018
  torch's ``_backend`` attributes for the legacy file), torchxrayvision's whole pickled
  ``xrv.models.DenseNet`` (classes posing under torchxrayvision's names while saving, so the file
  names them as the release does; the loader never has them).
- Each source's published preprocessing: torchvision transforms for arnoweng/CheXNet (model.py:
  Resize 256, TenCrop 224, ToTensor, ImageNet Normalize) and reproduce-chexnet (eval transforms:
  Resize 224, CenterCrop 224), and torchxrayvision's documented path (``skimage.io.imread``,
  ``xrv.datasets.normalize(img, 255)``, ``XRayCenterCrop``, ``XRayResizer(224)``: skimage's
  resize), transcribed from their code.
"""

from __future__ import annotations

import contextlib
import re
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision import transforms
from torchvision.models import densenet as tv_densenet

IMAGENET = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
XRV_MODULE = "torchxrayvision.models"


def perturb(net: nn.Module, seed: int) -> nn.Module:
    """Random BN statistics/affine so that a mis-mapped BN key changes the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.8 + 0.4 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
    return net.eval()


def chexnet_densenet(seed: int) -> nn.Module:
    """CheXNet's DenseNet-121: classifier Sequential(Linear(1024, 14), Sigmoid())."""
    torch.manual_seed(seed)
    net = torchvision.models.densenet121(weights=None)
    net.classifier = nn.Sequential(nn.Linear(1024, 14), nn.Sigmoid())
    return perturb(net, seed)


def old_style_key(key: str) -> str:
    """torch < 0.4's DenseNet key names (``norm.1`` for ``norm1``), as in arnoweng's file."""
    return re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)


def arnoweng_checkpoint(net: nn.Module) -> dict:
    state = {"module.densenet121." + old_style_key(k): v for k, v in net.state_dict().items()}
    return {"epoch": 5, "arch": "densenet121", "best_loss": 0.14, "state_dict": state,
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]}}


def save_legacy(obj: object, path: Path) -> Path:
    """torch's pre-1.6 format, as every file of 2017-2020 was written."""
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    return path


@contextlib.contextmanager
def posing(module_name: str, **members: object):
    """``module_name`` (and its parents) importable while saving, holding ``members`` (each
    named as its ``__qualname__``), whose ``__module__`` names it there; undone afterwards."""
    added = []
    parts = module_name.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)
            sys.modules[name].__file__ = __file__  # where inspect finds the classes' source
            added.append(name)
    mod = sys.modules[module_name]
    old = {}
    for name, obj in members.items():
        assert obj.__qualname__ == name, name
        old[name] = (obj.__module__, obj.__qualname__)
        obj.__module__ = module_name
        setattr(mod, name, obj)
    try:
        yield
    finally:
        for name, obj in members.items():
            obj.__module__ = old[name][0]
        for name in added:
            del sys.modules[name]


def spread_outputs(net: nn.Module, linear: nn.Linear, calib: torch.Tensor) -> nn.Module:
    """Rescale ``linear`` so the logits on ``calib`` (images through the source's preprocessing)
    have mean 0 and standard deviation 1.5 per output: random weights otherwise saturate the
    sigmoids at 0 or 1, where every comparison passes."""
    seen = []
    hook = linear.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        net(calib)
        hook.remove()
        logits = seen[0]
        std = logits.std(dim=0).clamp_min(1e-6)
        linear.weight.mul_((1.5 / std)[:, None])
        linear.bias.copy_((linear.bias - logits.mean(dim=0)) * 1.5 / std)
    return net


class DenseNet(tv_densenet.DenseNet):
    """Shaped as torchxrayvision's ``DenseNet``: 1-channel conv0, 18 outputs, ``pathologies``,
    ``upsample`` and an ``op_threshs`` buffer (None in the release files); forward with
    ``apply_sigmoid``: sigmoid(classifier(GAP(relu(features))))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))


class _DenseBlock(tv_densenet._DenseBlock):
    """Named as torchxrayvision's own block classes, so the saved file names them alike."""


class _DenseLayer(tv_densenet._DenseLayer):
    pass


class _Transition(tv_densenet._Transition):
    pass


_XRV_CLASSES = {tv_densenet._DenseBlock: _DenseBlock, tv_densenet._DenseLayer: _DenseLayer,
                tv_densenet._Transition: _Transition}


def xrv_densenet(seed: int, pathologies: tuple[str, ...]) -> DenseNet:
    torch.manual_seed(seed)
    net = DenseNet(num_classes=18)
    net.features.conv0 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    for m in net.modules():
        if type(m) in _XRV_CLASSES:
            m.__class__ = _XRV_CLASSES[type(m)]
    net.pathologies = list(pathologies)
    net.upsample = nn.Upsample(size=(224, 224), mode="bilinear", align_corners=False)
    net.register_buffer("op_threshs", None)
    return perturb(net, seed)


def save_xrv_release(net: DenseNet, path: Path) -> Path:
    """As the release files were written: the whole model, legacy format, xrv's class names
    (with each class's source in its module record, as torch writes it)."""
    with posing(XRV_MODULE, DenseNet=DenseNet, _DenseBlock=_DenseBlock,
                _DenseLayer=_DenseLayer, _Transition=_Transition):
        return save_legacy(net, path)


class _ThnnBackend:
    """torch 0.4's ``module._backend``: pickled as a call of _get_thnn_function_backend()."""

    def __reduce__(self):
        return (sys.modules["torch.nn.backends.thnn"]._get_thnn_function_backend, ())


def _get_thnn_function_backend():  # the function a 2018 file names (never called on load)
    raise AssertionError("a checkpoint loader ran code named by the file")


def save_reproduce_2018(net: nn.Module, path: Path) -> Path:
    """reproduce-chexnet's checkpoint as torch 0.4 wrote it: legacy format, and every module
    carrying ``_backend`` (torch.nn.backends.thnn._get_thnn_function_backend)."""
    for m in net.modules():
        m._backend = _ThnnBackend()
    try:
        with posing("torch.nn.backends.thnn",
                    _get_thnn_function_backend=_get_thnn_function_backend):
            return save_legacy({"model": net, "best_loss": 0.14, "epoch": 5,
                                "rng_state": torch.get_rng_state(), "LR": 1e-4}, path)
    finally:
        for m in net.modules():
            del m._backend


# --- the sources' preprocessing -----------------------------------------------------------------

def arnoweng_input(path: Path) -> torch.Tensor:
    """arnoweng/CheXNet model.py: [10, 3, 224, 224] (TenCrop of Resize 256)."""
    tf = transforms.Compose([
        transforms.Resize(256), transforms.TenCrop(224),
        transforms.Lambda(lambda crops: torch.stack([transforms.ToTensor()(c) for c in crops])),
        transforms.Lambda(lambda crops: torch.stack([IMAGENET(c) for c in crops]))])
    return tf(Image.open(path).convert("RGB"))


def reproduce_input(path: Path) -> torch.Tensor:
    """reproduce-chexnet's eval transforms: [1, 3, 224, 224]."""
    tf = transforms.Compose([transforms.Resize(224), transforms.CenterCrop(224),
                             transforms.ToTensor(), IMAGENET])
    return tf(Image.open(path).convert("RGB"))[None]


def xrv_input(path: Path) -> torch.Tensor:
    """torchxrayvision's documented path: [1, 1, 224, 224] in [-1024, 1024]."""
    import skimage.io
    import skimage.transform

    img = skimage.io.imread(path)
    img = (2 * (img.astype(np.float32) / 255) - 1.0) * 1024  # xrv.datasets.normalize(img, 255)
    if img.ndim > 2:
        img = img[:, :, 0]
    img = img[None, :, :]
    _, y, x = img.shape  # XRayCenterCrop
    side = min(y, x)
    sx, sy = x // 2 - side // 2, y // 2 - side // 2
    img = img[:, sy:sy + side, sx:sx + side]
    img = skimage.transform.resize(img, (1, 224, 224), mode="constant",  # XRayResizer(224)
                                   preserve_range=True).astype(np.float32)
    return torch.from_numpy(img)[None]
