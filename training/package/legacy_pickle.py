"""Reading torch's legacy (pre-1.6) checkpoint format without running code from the file.

``torch.save(..., _use_new_zipfile_serialization=False)`` (and every torch before 1.6) writes
five pickles back to back: a magic number, a protocol number (1001), a dict of system facts
(byte order, C type sizes), the object itself, and the sorted list of storage keys; then, per
key, an int64 element count and the storage's raw bytes. Inside the main pickle, tensors are
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` calls whose storage is a
persistent id ``("storage", torch.FloatStorage, key, location, numel, view)``, and a whole
pickled ``nn.Module`` names each of its classes once in a persistent id ``("module", cls,
source_file, source)`` (the class's source code, kept by torch to warn of changes).

Why not ``torch.load(weights_only=True)``: its restricted unpickler refuses those "module"
records outright, whatever the class, so every whole pickled model in this format (each
torchxrayvision release, reproduce-chexnet's 2018 checkpoint) is refused although its globals
are harmless (docs/decisions.md, "Legacy torch checkpoints").

:class:`LegacyUnpickler` admits globals from an allow-list only: storage types (a dtype marker),
its own tensor/parameter rebuilders, ``OrderedDict``/``set``, torch's no-op
``_get_thnn_function_backend`` (a stub returning None), and ``nn.Module`` classes of torch,
torchvision and torchxrayvision, each replaced by an inert :class:`ModuleStub` subclass that only
collects its pickled attributes. Nothing the file names is imported, no source is executed, and
anything else is an :class:`UnsafeCheckpointError` naming the global.

No torch object exists while the file is unpickled: storages and tensors are inert immutable
records made tensors only once the storage section is read and each view checked. A live
tensor would let the file's opcodes call its methods (ADDITEMS calls ``.add``: ``[n, 1]`` plus
``[1, n]`` allocates n^2 elements from n in the file; BUILD calls ``__setstate__``). Each
pickle is first walked with :mod:`pickletools` and refused when a memo index runs past its
opcodes: the C unpickler allocates and clears a memo that long (16 GiB from a 60-byte file).
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
from collections import OrderedDict
from pathlib import Path

import torch

#: torch.serialization's MAGIC_NUMBER and PROTOCOL_VERSION of the legacy format.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}
#: Module prefixes whose classes are read as inert stubs (layers, never code).
STUB_PREFIXES = ("torch.nn.modules.", "torchvision.models.", "torchxrayvision.models")


class UnsafeCheckpointError(ValueError):
    """Loading the file would need unpickling something outside the allow-list."""


class LegacyFormatError(ValueError):
    """The file starts like a legacy torch checkpoint but is not one (cut short, damaged)."""


class ModuleStub:
    """Stands in for an ``nn.Module`` class of the file: pickle's NEWOBJ/BUILD give it the
    module's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, attributes) and nothing
    runs. ``source_class`` is the dotted name the file gave."""

    source_class = ""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.init_args = args


class _StorageType:
    __slots__ = ("dtype", "name")

    def __init__(self, name: str, dtype: torch.dtype) -> None:
        self.name, self.dtype = name, dtype


class StorageRef(tuple):
    """(key, view offset, view size or None), inert: pickle's BUILD/SETITEMS/ADDITEMS fail."""
    __slots__ = ()


class TensorRef(tuple):
    """(StorageRef, offset, sizes, strides), inert until :func:`materialize`."""
    __slots__ = ()


def _ints(values: object) -> tuple[int, ...]:
    if not isinstance(values, tuple | list):
        raise LegacyFormatError("a tensor's sizes or strides are not a tuple")
    return tuple(int(v) for v in values)


def _rebuild_tensor(storage: object, offset: int, size: tuple, stride: tuple,
                    *_ignored: object) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise UnsafeCheckpointError("a tensor whose storage is not a storage record")
    return TensorRef((storage, int(offset), _ints(size), _ints(stride)))


def _view(ref: TensorRef, roots: dict[str, torch.Tensor]) -> torch.Tensor:
    """The tensor ``ref`` records: a view of its storage, checked to lie within it."""
    (key, voff, vsize), offset, sizes, strides = ref
    root = roots[key]
    numel = root.numel() if vsize is None else int(vsize)
    if int(voff) < 0 or numel < 0 or int(voff) + numel > root.numel():
        raise LegacyFormatError("a storage view reaches outside its storage")
    last = offset + sum((n - 1) * s for n, s in zip(sizes, strides, strict=True) if n > 0)
    if offset < 0 or any(s < 0 for s in strides) or any(n < 0 for n in sizes) or (
            all(sizes) and last >= numel):
        raise LegacyFormatError("a tensor reaches outside its storage")
    if math.prod(sizes) > max(numel, 1):  # zero strides: a copy could be huge
        raise LegacyFormatError("a tensor larger than its storage")
    return root.as_strided(sizes, strides, int(voff) + offset)


def materialize(obj: object, roots: dict[str, torch.Tensor],
                done: dict[int, tuple[object, object]] | None = None) -> object:
    """``obj`` with every :class:`TensorRef` replaced by its tensor: dicts, lists and module
    stubs' ``__dict__`` in place (they may be shared or carry attributes such as a state dict's
    ``_metadata``), tuples and sets rebuilt. ``done``: id -> (original, result); it keeps the
    originals alive, so that no id is reused by another object during the walk."""
    done = {} if done is None else done
    if id(obj) in done:
        return done[id(obj)][1]
    if isinstance(obj, TensorRef):
        out = _view(obj, roots)
    elif isinstance(obj, StorageRef):
        raise LegacyFormatError("a bare storage where a tensor was expected")
    elif isinstance(obj, dict | list | ModuleStub):
        done[id(obj)] = (obj, obj)
        items = obj.__dict__ if isinstance(obj, ModuleStub) else obj
        for k, v in list(items.items() if isinstance(items, dict) else enumerate(items)):
            items[k] = materialize(v, roots, done)
        return obj
    elif isinstance(obj, tuple | set | frozenset) and type(obj) in (tuple, set, frozenset):
        out = type(obj)(materialize(v, roots, done) for v in obj)
    else:
        return obj
    done[id(obj)] = (obj, out)
    return out


def _rebuild_parameter(data: object, *_ignored: object) -> TensorRef:
    if not isinstance(data, TensorRef):
        raise UnsafeCheckpointError("a parameter that is not a tensor")
    return data


def _no_backend(*_ignored: object) -> None:
    """torch.nn.backends.thnn._get_thnn_function_backend: old modules' ``_backend``; unused."""
    return None


_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.nn.parameter", "Parameter"): _rebuild_parameter,
    ("torch.nn.backends.thnn", "_get_thnn_function_backend"): _no_backend,
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set, ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset, ("__builtin__", "frozenset"): frozenset,
    ("torch", "Size"): tuple,
}


class LegacyUnpickler(pickle.Unpickler):
    """The restricted unpickler (see the module docstring); ``storages`` collects the storage
    records: key -> (dtype, numel, flat tensor to fill)."""

    def __init__(self, fh: io.BufferedIOBase, byte_budget: int) -> None:
        super().__init__(fh)
        self.storages: dict[str, torch.Tensor] = {}
        self.stubs: dict[str, type] = {}
        self.byte_budget = byte_budget

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _FUNCTIONS:
            return _FUNCTIONS[(module, name)]
        if module == "torch" and name in _DTYPES:
            return _StorageType(name, _DTYPES[name])
        dotted = f"{module}.{name}"
        if "." not in name and dotted.startswith(STUB_PREFIXES):
            if dotted not in self.stubs:
                self.stubs[dotted] = type(name, (ModuleStub,), {"source_class": dotted})
            return self.stubs[dotted]
        raise UnsafeCheckpointError(dotted)

    def persistent_load(self, pid: object) -> object:
        if not isinstance(pid, tuple) or not pid:
            raise LegacyFormatError("a persistent id that is not a record")
        if pid[0] == "module" and len(pid) == 4:
            cls = pid[1]  # the source text (pid[3]) is never looked at, let alone run
            if not (isinstance(cls, type) and issubclass(cls, ModuleStub)):
                raise UnsafeCheckpointError(f"a module record for {cls!r:.60}")
            return cls
        if pid[0] == "storage" and len(pid) == 6:
            _, kind, key, _location, numel, view = pid
            if not isinstance(kind, _StorageType) or not isinstance(numel, int) or numel < 0:
                raise LegacyFormatError("a storage record of unknown type")
            key = str(key)
            if key not in self.storages:
                nbytes = numel * torch.empty(0, dtype=kind.dtype).element_size()
                self.byte_budget -= nbytes
                if self.byte_budget < 0:  # more storage than the file holds: refuse, no alloc
                    raise LegacyFormatError("storages larger than the file (cut short or damaged)")
                self.storages[key] = torch.zeros(numel, dtype=kind.dtype)
            if view is not None:  # (view_key, offset, size) of torch < 1.0 storage views
                _vkey, off, size = view
                return StorageRef((key, int(off), int(size)))
            return StorageRef((key, 0, None))
        raise LegacyFormatError(f"an unknown persistent record {pid[0]!r:.40}")


def is_legacy_checkpoint(path: Path) -> bool:
    """Whether ``path`` starts with the legacy format's magic number (one pickled int)."""
    with open(path, "rb") as fh:
        try:
            return _Plain(fh).load() == LEGACY_MAGIC
        except Exception:  # not a pickle at all
            return False


#: The opcodes that store into the unpickler's memo at an index the file chooses.
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def check_memo(fh: io.BufferedIOBase) -> None:
    """Walk the pickle at ``fh`` with pickletools (opcodes only, runs nothing), then go back;
    refuse a memo index past the opcodes before it (a pickler numbers its memo 0, 1, 2...)."""
    start = fh.tell()
    for count, (op, arg, _pos) in enumerate(pickletools.genops(fh), start=1):
        if op.name in _MEMO_PUTS and not 0 <= int(arg) < count:
            raise LegacyFormatError(f"a pickle memo index ({int(arg)}) past its opcodes")
    fh.seek(start)


class _Plain(pickle.Unpickler):
    """For the header's plain values: no globals at all; the memo checked first."""

    def __init__(self, fh: io.BufferedIOBase) -> None:
        check_memo(fh)
        super().__init__(fh)

    def find_class(self, module: str, name: str) -> object:
        raise UnsafeCheckpointError(f"{module}.{name}")

    def persistent_load(self, pid: object) -> object:
        raise LegacyFormatError("a persistent id in the header")


def load_legacy(path: Path) -> object:
    """The object in legacy checkpoint ``path``; tensors filled from the storage section.

    Raises :class:`UnsafeCheckpointError` (a global outside the allow-list; the message is the
    global's dotted name) or :class:`LegacyFormatError` (damaged, cut short, big-endian)."""
    size = Path(path).stat().st_size
    with open(path, "rb") as fh:
        try:
            header = _Plain(fh)
            if header.load() != LEGACY_MAGIC:
                raise LegacyFormatError("no legacy magic number")
            if _Plain(fh).load() != LEGACY_PROTOCOL:
                raise LegacyFormatError("an unknown legacy protocol version")
            info = _Plain(fh).load()
            if not isinstance(info, dict) or info.get("little_endian") is not True:
                raise LegacyFormatError("not written on a little-endian machine")
            check_memo(fh)
            unpickler = LegacyUnpickler(fh, byte_budget=size)
            obj = unpickler.load()
            keys = _Plain(fh).load()
            if not isinstance(keys, list) or set(map(str, keys)) != set(unpickler.storages):
                raise LegacyFormatError("the storage list does not match the tensors")
            for key in keys:
                _read_storage(fh, unpickler.storages[str(key)])
            return materialize(obj, unpickler.storages)
        except (EOFError, pickle.UnpicklingError, TypeError, AttributeError, IndexError,
                KeyError, ValueError, RuntimeError, MemoryError) as err:  # RecursionError too
            if isinstance(err, UnsafeCheckpointError | LegacyFormatError):
                raise
            raise LegacyFormatError(f"damaged or cut short ({type(err).__name__})") from None


def _read_storage(fh: io.BufferedIOBase, target: torch.Tensor) -> None:
    head = fh.read(8)
    if len(head) != 8 or int.from_bytes(head, "little") != target.numel():
        raise LegacyFormatError("a storage's size does not match its record (cut short?)")
    nbytes = target.numel() * target.element_size()
    data = fh.read(nbytes)
    if len(data) != nbytes:
        raise LegacyFormatError("cut short inside the storage data")
    if nbytes:
        target.copy_(torch.frombuffer(bytearray(data), dtype=target.dtype))
