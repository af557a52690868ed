"""Convert public CheXNet-style weights into chexnet model packages (``chexnet import``).

Every source becomes a :class:`~chexnet.training.fit.cam_model.CamClassifier` (features -> GAP ->
linear), the head CAMs need, and is exported with
:func:`~chexnet.training.package.export.export_package`
(which checks ONNX Runtime against torch). Files are read with ``torch.load(weights_only=True)``
only: the whole-model format admits a short list of torchvision/torch.nn classes through
``torch.serialization.safe_globals`` and nothing else, so a checkpoint that wants anything more
(a malicious ``__reduce__`` calling ``os.system``, say) is refused, never unpickled.
"""

from __future__ import annotations

import math
import pickle
import re
import warnings
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
from chexnet.training.fit.cam_model import _OLD_DENSENET_KEY, CamClassifier

FORMATS = ("arnoweng", "reproduce-chexnet", "torchxrayvision", "torchvision")
TORCHVISION_ARCHS = ("densenet121", "resnet101", "vgg16")

#: torchxrayvision's default 18 pathologies, in its output order.
XRV_PATHOLOGIES = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema",
    "Fibrosis", "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass",
    "Hernia", "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum",
)

#: The classes a reproduce-chexnet ``checkpoint`` (a whole pickled torchvision DenseNet-121 with
#: a Linear+Sigmoid classifier) needs beyond torch's default weights-only allow-list.
WHOLE_DENSENET_GLOBALS = (
    tv_densenet.DenseNet, tv_densenet._DenseBlock, tv_densenet._DenseLayer,
    tv_densenet._Transition, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
    nn.Sequential, nn.Linear, nn.Sigmoid,
)



class _PickledModule(nn.Module):
    """Stands in for torchxrayvision's classes when reading its whole pickled models: admitted
    under their names, it only receives the pickled attributes (no code of theirs runs); the
    weights are then read from ``_parameters``/``_buffers`` by :func:`module_state`."""


#: torchxrayvision's released ``.pt`` files pickle the whole ``xrv.models.DenseNet``.
XRV_WHOLE_GLOBALS = (
    *WHOLE_DENSENET_GLOBALS, nn.Upsample, nn.AdaptiveAvgPool2d,
    *((_PickledModule, f"torchxrayvision.models.{n}")
      for n in ("DenseNet", "_DenseLayer", "_DenseBlock", "_Transition")))

NO_THRESHOLDS_RULE = "not provided by the source: 0.5"
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+?)(?: was|\s|$)")


class ImportFormatError(ValueError):
    """The file is not what ``--format`` says (keys, shapes, label count)."""


class UnsafeCheckpointError(ValueError):
    """Loading the file would need unpickling something outside the allow-list."""


@dataclass(frozen=True)
class ImportOptions:
    fmt: str
    labels: tuple[str, ...] | None = None
    arch: str = "densenet121"
    name: str | None = None
    version: str = "imported"
    demo: bool = True
    description: str = ""


def safe_torch_load(path: Path, allowed: tuple = ()) -> object:
    """``torch.load(weights_only=True)``, admitting only ``allowed`` beyond torch's defaults."""
    try:
        with torch.serialization.safe_globals(list(allowed)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" not in text:
            raise ImportFormatError(f"{path}: not a torch checkpoint ({text.splitlines()[0]})"
                                    ) from None
        m = _REFUSED_GLOBAL.search(text)
        found = m.group(1) if m else _first_foreign_global(path)
        what = found or "an object outside the allow-list"
        hint = (" (a whole pickled torchvision model: if it is reproduce-chexnet's `checkpoint`, "
                "use --format reproduce-chexnet)"
                if what.startswith("torchvision.") and not allowed else "")
        raise UnsafeCheckpointError(
            f"{path}: refused: loading it would unpickle {what}{hint}, and unpickling can run "
            "arbitrary code. Convert it by hand: load it yourself in a sandbox you trust, "
            "torch.save(model.state_dict(), 'weights.pt'), then `chexnet import weights.pt "
            "--format torchvision --labels ...`") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImportFormatError(f"{path}: not a readable torch checkpoint ({first})") from None


def _first_foreign_global(path: Path) -> str | None:
    """Name the first non-torch global a pickle would import, read with pickletools (which
    only parses opcodes, never executes them); None when it cannot tell."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                data = zf.read(name)
        else:
            data = path.read_bytes()
        strings: list[str] = []
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "INST"):
                name = str(arg).replace(" ", ".")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                name = f"{strings[-2]}.{strings[-1]}"
            else:
                if isinstance(arg, str):
                    strings.append(arg)
                continue
            if not name.startswith(("torch.", "collections.OrderedDict")):
                return name
    except Exception:  # only a diagnostic: never let it mask the refusal
        return None
    return None


def module_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers of an unpickled module tree, walked through ``__dict__`` (works
    for modules pickled by old torch versions whose hooks/attributes differ)."""
    out: dict[str, torch.Tensor] = {}

    def walk(mod: object, prefix: str) -> None:
        d = getattr(mod, "__dict__", {})
        for store in ("_parameters", "_buffers"):
            for k, v in (d.get(store) or {}).items():
                if v is not None:
                    out[prefix + k] = v.detach()
        for k, child in (d.get("_modules") or {}).items():
            if child is not None:
                walk(child, f"{prefix}{k}.")

    walk(module, "")
    return out


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
    out = {}
    for key, value in state.items():
        m = _OLD_DENSENET_KEY.match(key)
        key = m.group(1) + m.group(2) if m else key
        out[re.sub(r"^classifier\.0\.", "classifier.", key)] = value
    return out


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


def convert(src: Path, opts: ImportOptions) -> tuple[CamClassifier, ModelCard]:
    """Read ``src`` in format ``opts.fmt``; return the CAM model and its card."""
    src = Path(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: file not found")
    if opts.fmt not in FORMATS:
        raise ImportFormatError(f"unknown format {opts.fmt!r}; choose one of {', '.join(FORMATS)}")
    imagenet = PreprocessSpec(size=224, resize=224)
    arch, rule, description = "densenet121", NO_THRESHOLDS_RULE, ""
    if opts.fmt == "arnoweng":
        what = "an arnoweng/CheXNet model.pth.tar (DataParallel DenseNet-121, 14 classes)"
        state = _as_state_dict(safe_torch_load(src), src, opts.fmt)
        state = _fix_densenet_keys(_strip(state, ("module.", "densenet121.")))
        model = _densenet(state, src, what)
        labels = opts.labels or CHESTXRAY14_LABELS
        _check_labels(labels, model.classifier.out_features, src)
        spec = PreprocessSpec(size=224, resize=256)
        thresholds = _thresholds_05(labels)
        description = ("Imported from the arnoweng/CheXNet PyTorch reimplementation "
                       "(model.pth.tar, format arnoweng). The source resized to 256 and averaged "
                       "predictions over ten 224 crops (TenCrop); this package uses the single "
                       "centre 224 crop, so scores can differ slightly from the source's.")
    elif opts.fmt == "reproduce-chexnet":
        what = "a reproduce-chexnet checkpoint (a dict with a whole pickled DenseNet-121)"
        obj = safe_torch_load(src, WHOLE_DENSENET_GLOBALS)
        net = obj.get("model") if isinstance(obj, dict) else None
        if not isinstance(net, tv_densenet.DenseNet):
            raise ImportFormatError(f"{src}: not {what}: no DenseNet under 'model'; check --format")
        state = _fix_densenet_keys(module_state(net))
        model = _densenet(state, src, what)
        labels = opts.labels or CHESTXRAY14_LABELS
        _check_labels(labels, model.classifier.out_features, src)
        spec, thresholds = imagenet, _thresholds_05(labels)
        description = ("Imported from a reproduce-chexnet `checkpoint` (format "
                       "reproduce-chexnet): torchvision DenseNet-121, ImageNet normalisation, "
                       "224x224 input.")
    elif opts.fmt == "torchxrayvision":
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
        rule = ("torchxrayvision's op_threshs (per-output operating points shipped with the "
                "weights)" + ("" if len(thresholds) == len(labels) else
                              "; labels without a finite op_threshs use 0.5"))
        spec = PreprocessSpec(size=224, resize=224, channels=1, mean=(0.5,), std=(1 / 2048,))
        description = ("Imported from torchxrayvision DenseNet-121 weights (format "
                       "torchxrayvision): 1-channel input scaled to [-1024, 1024]. The package "
                       "outputs plain sigmoid probabilities (torchxrayvision's op_norm "
                       "recalibration is not applied); op_threshs are the card's thresholds. "
                       f"Unused outputs dropped: {18 - len(keep)}.")
    else:
        if not opts.labels:
            raise ImportFormatError("--format torchvision needs --labels (comma-separated label "
                                    "names, one per model output, in output order)")
        if opts.arch == "vgg16":
            raise ImportFormatError(
                "--arch vgg16 is not supported: torchvision's VGG-16 classifier is a 3-layer MLP "
                "on flattened 7x7 features, but class activation maps need global average "
                "pooling followed by a single linear layer; fine-tune a GAP+linear head "
                "(chexnet-train --arch vgg16) instead")
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
        spec, thresholds = imagenet, _thresholds_05(labels)
        description = (f"Imported from a plain torchvision {arch} state dict (format "
                       "torchvision): ImageNet normalisation, 224x224 input.")
    if opts.description:
        description = f"{opts.description} {description}"
    card = ModelCard(
        name=opts.name or f"imported-{opts.fmt}", version=opts.version, labels=labels,
        preprocess=spec, thresholds=thresholds, threshold_rule=rule, demo=opts.demo, arch=arch,
        description=description,
        training_data={"note": f"not recorded: weights imported from format {opts.fmt}; see "
                               "the source's documentation"},
        extra={"source_format": opts.fmt, "source_sha256": sha256_file(src),
               "source_file": src.name})
    return model.eval(), card


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
