"""Reading untrusted torch checkpoints without running their code.

Zip-format files (torch >= 1.6) are read with ``torch.load(weights_only=True)`` only: the
whole-model formats admit a short list of torchvision/torch.nn classes through
``torch.serialization.safe_globals`` and nothing else. Legacy-format files (torch < 1.6: every
torchxrayvision release, the 2017/2018 CheXNet checkpoints) go through
:mod:`.legacy_pickle`'s restricted unpickler, because torch's refuses their whole pickled
models. Either way a checkpoint that wants anything more (a malicious ``__reduce__`` calling
``os.system``, say) is refused, never unpickled.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn
from torchvision.models import densenet as tv_densenet

from chexnet.training.package.legacy_pickle import (
    LegacyFormatError,
    UnsafeCheckpointError,
    is_legacy_checkpoint,
    load_legacy,
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

_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+?)(?: was|\s|$)")


class ImportFormatError(ValueError):
    """The file is not what ``--format`` says (keys, shapes, label count)."""


_WEB_PAGE = ("a web page (HTML), not weights: the download saved a login, warning or error page "
             "instead of the file; download the file itself")
#: What a file is, by its first bytes, when it is plainly not a ``torch.save`` checkpoint, and
#: what to do.
_NOT_A_CHECKPOINT = (
    (b"<!doctype html", _WEB_PAGE), (b"<html", _WEB_PAGE),
    (b"\x89hdf", "an HDF5 file (Keras/TensorFlow weights); chexnet import reads PyTorch weights"),
    (b"\x89png", "a PNG image, not weights: give the .pth/.pt/.pth.tar weights file"),
    (b"\xff\xd8\xff", "a JPEG image, not weights: give the .pth/.pt/.pth.tar weights file"),
    (b"\x1f\x8b", "gzip-compressed: unpack it first (gunzip, or tar xzf for a .tar.gz) and "
                  "import the file inside"),
)


def describe_non_checkpoint(path: Path) -> str | None:
    """What ``path`` is and what to do, from its first bytes, when it is plainly not a torch
    checkpoint (empty, a web page, HDF5, gzip, safetensors, ONNX); None when it may be one."""
    with open(path, "rb") as fh:
        head = fh.read(132)
    if not head:
        return "an empty file (a failed download?): download it again"
    lowered = head.lstrip().lower()
    for magic, what in _NOT_A_CHECKPOINT:
        if lowered.startswith(magic):
            return what
    if len(head) > 9 and head[8:10] == b'{"' and int.from_bytes(head[:8], "little") > 1:
        return ("a safetensors file; chexnet import reads torch.save files: convert it with "
                "safetensors.torch.load_file and torch.save")
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "a DICOM file, not weights: give the .pth/.pt/.pth.tar weights file"
    if path.suffix.lower() == ".onnx":
        return ("an ONNX model, which is a model package already: register it with `chexnet "
                "models add` instead")
    return None


def _not_a_checkpoint(path: Path) -> ImportFormatError:
    what = describe_non_checkpoint(path) or (
        ("a zip archive that torch.save did not write, or a checkpoint cut short"
         if path.read_bytes()[:2] == b"PK" else
         "in no layout torch.save writes (a zip archive or a legacy pickle)")
        + "; give the .pth/.pt/.pth.tar weights file, and if it is that, it is damaged or cut "
          "short: download it again")
    return ImportFormatError(f"{path}: not a PyTorch checkpoint: {what}")


def safe_torch_load(path: Path, allowed: tuple = ()) -> object:
    """The object in checkpoint ``path``, unpickled without running code: a legacy-format file
    through :func:`~.legacy_pickle.load_legacy` (whole models as inert stubs), a zip file through
    ``torch.load(weights_only=True)`` admitting only ``allowed`` beyond torch's defaults."""
    if describe_non_checkpoint(path) is not None:
        raise _not_a_checkpoint(path)
    if not zipfile.is_zipfile(path) and is_legacy_checkpoint(path):
        try:
            return load_legacy(path)
        except UnsafeCheckpointError as err:
            raise _refused(path, str(err), allowed) from None
        except LegacyFormatError:
            raise _not_a_checkpoint(path) from None
    try:
        with torch.serialization.safe_globals(list(allowed)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" not in text:
            raise _not_a_checkpoint(path) from None
        m = _REFUSED_GLOBAL.search(text)
        found = m.group(1) if m else _first_foreign_global(path)
        if found is None and not _is_pickle(path):
            raise _not_a_checkpoint(path) from None
        raise _refused(path, found or "an object outside the allow-list", allowed) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError):
        raise _not_a_checkpoint(path) from None


def _refused(path: Path, what: str, allowed: tuple) -> UnsafeCheckpointError:
    hint = (" (a whole pickled torchvision model: if it is reproduce-chexnet's `checkpoint`, "
            "use --format reproduce-chexnet)"
            if what.startswith("torchvision.") and not allowed else "")
    return UnsafeCheckpointError(
        f"{path}: refused: loading it would unpickle {what}{hint}, and unpickling can run "
        "arbitrary code. Convert it by hand: load it yourself in a sandbox you trust, "
        "torch.save(model.state_dict(), 'weights.pt'), then `chexnet import weights.pt "
        "--format torchvision --labels ...`")


def _is_pickle(path: Path) -> bool:
    """Whether ``path`` (or the data.pkl of its zip archive) parses as a whole pickle stream
    (pickletools only reads opcodes; nothing is executed)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                data = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
        else:
            data = path.read_bytes()
        for _ in pickletools.genops(data):
            pass
    except Exception:  # not a pickle: a diagnostic only
        return False
    return True


def _first_foreign_global(path: Path) -> str | None:
    """Name the first non-torch global a pickle would import, read with pickletools (which
    only parses opcodes, never executes them); None when it cannot tell."""
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


def module_state(module: object) -> dict[str, torch.Tensor]:
    """Parameters and buffers of an unpickled module tree, walked through ``__dict__`` (works
    for modules pickled by old torch versions whose hooks/attributes differ, and for
    :class:`~.legacy_pickle.ModuleStub` trees)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def entries(d: dict, store: str, prefix: str) -> list:
        items = d.get(store) or {}
        if not isinstance(items, dict):
            raise ImportFormatError(f"{prefix}{store} is not a dict: a damaged or hand-made file")
        return [(k, v) for k, v in items.items() if v is not None]

    def walk(mod: object, prefix: str) -> None:
        if id(mod) in seen:
            raise ImportFormatError(f"the layer {prefix or 'model'} contains itself: a damaged "
                                    "or hand-made file")
        seen.add(id(mod))
        d = getattr(mod, "__dict__", {})
        for store in ("_parameters", "_buffers"):
            for k, v in entries(d, store, prefix):
                if not isinstance(v, torch.Tensor):
                    raise ImportFormatError(f"{prefix}{k} is not a tensor: a damaged or "
                                            "hand-made file")
                out[prefix + k] = v.detach()
        for k, child in entries(d, "_modules", prefix):
            walk(child, f"{prefix}{k}.")

    walk(module, "")
    return out
