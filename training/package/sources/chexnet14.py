"""The two CheXNet reimplementations with ChestX-ray14's 14 labels.

- arnoweng/CheXNet ``model.pth.tar``: ``{"state_dict": ...}`` of a DataParallel DenseNet-121
  (``module.densenet121.`` keys, old layer names). Its test script (model.py) resizes to 256,
  scores ``TenCrop(224)`` and averages the sigmoid outputs: the card's TTA is ``ten-crop``.
- reproduce-chexnet ``results/checkpoint``: ``{"model": <whole DenseNet-121>, ...}`` (legacy or
  zip format). Its eval_model.py scores ``Resize(224)`` + ``CenterCrop(224)`` once: TTA none.

Both normalise with ImageNet's mean/std on a 3-channel PIL image (``convert("RGB")``).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.training.package.legacy_pickle import ModuleStub
from chexnet.training.package.safe_load import (
    WHOLE_DENSENET_GLOBALS,
    ImportFormatError,
    module_state,
    safe_torch_load,
)
from chexnet.training.package.sources.common import (
    IMAGENET_224,
    Converted,
    as_state_dict,
    check_labels,
    class_name,
    densenet,
    fix_densenet_keys,
    strip,
    thresholds_05,
)


def arnoweng(src: Path, labels: tuple[str, ...] | None, fmt: str) -> Converted:
    what = "an arnoweng/CheXNet model.pth.tar (DataParallel DenseNet-121, 14 classes)"
    state = as_state_dict(safe_torch_load(src), src, fmt)
    state = fix_densenet_keys(strip(state, ("module.", "densenet121.")))
    model = densenet(state, src, what)
    check_labels(labels or CHESTXRAY14_LABELS, model.classifier.out_features, src, bool(labels))
    labels = labels or CHESTXRAY14_LABELS
    return Converted(
        model, labels, PreprocessSpec(size=224, resize=256), thresholds_05(labels),
        "Imported from the arnoweng/CheXNet PyTorch reimplementation (model.pth.tar, format "
        "arnoweng). As the source's test script does, it is scored on ten 224 crops of the "
        "image resized to 256 (TenCrop), probabilities averaged (card tta: ten-crop).",
        tta="ten-crop")


def reproduce_chexnet(src: Path, labels: tuple[str, ...] | None, fmt: str) -> Converted:
    what = "a reproduce-chexnet checkpoint (a dict with a whole pickled DenseNet-121)"
    obj = safe_torch_load(src, WHOLE_DENSENET_GLOBALS)
    net = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(net, nn.Module | ModuleStub) or not class_name(net).endswith(
            "densenet.DenseNet"):
        raise ImportFormatError(f"{src}: not {what}: no DenseNet under 'model'; check --format")
    model = densenet(fix_densenet_keys(module_state(net)), src, what)
    check_labels(labels or CHESTXRAY14_LABELS, model.classifier.out_features, src, bool(labels))
    labels = labels or CHESTXRAY14_LABELS
    return Converted(
        model, labels, IMAGENET_224, thresholds_05(labels),
        "Imported from a reproduce-chexnet `checkpoint` (format reproduce-chexnet): torchvision "
        "DenseNet-121, ImageNet normalisation, Resize 224 + CenterCrop 224, one crop (the "
        "source's eval_model.py uses no test-time augmentation).")
