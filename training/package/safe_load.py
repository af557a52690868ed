"""Reading untrusted torch checkpoints without running their code.

Files are read with ``torch.load(weights_only=True)`` only: the whole-model formats admit a short
list of torchvision/torch.nn classes through ``torch.serialization.safe_globals`` and nothing
else, so a checkpoint that wants anything more (a malicious ``__reduce__`` calling ``os.system``,
say) is refused, never unpickled.
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


class UnsafeCheckpointError(ValueError):
    """Loading the file would need unpickling something outside the allow-list."""


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
