"""Open a model package once: every check it must pass before anything runs it.

:func:`open_package` is the one place a package is verified. It hashes the file (memoised),
refuses a registered package that changed since it was registered, parses the ONNX graph once
(weights left on disk) to refuse external data outside the package's folder, reads the model
card from the graph's metadata and checks the graph's input and outputs against the card. The
result, a :class:`VerifiedPackage`, is what :class:`~chexnet.inference.scoring.engine.Engine`
loads into ONNX Runtime without checking again, what ``chexnet models`` lists and what the
viewer's model dialog shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from chexnet.inference.errors import ModelPackageError
from chexnet.inference.package.card import (
    CAMS_NAME,
    CARD_KEY,
    INPUT_NAME,
    OOD_NAME,
    PROBS_NAME,
    ModelCard,
)
from chexnet.inference.package.hashing import file_sha256
from chexnet.inference.package.registry import registered_entry_for
from chexnet.inference.preprocessing import TTA_MODES

Dim = int | str | None  # as ONNX Runtime reports a dimension: fixed, symbolic, unknown


@dataclass(frozen=True)
class VerifiedPackage:
    """A package that passed :func:`open_package`: its path, sha256 and card."""

    path: Path
    sha256: str
    card: ModelCard
    input_shape: tuple[Dim, ...]
    #: how it was chosen (set by :func:`~chexnet.inference.package.lookup.resolve_model`):
    #: ``--model``, ``user default`` or ``bundled default``; empty when opened by path
    chosen_by: str = field(default="", compare=False)

    @property
    def fixed_batch(self) -> bool:
        """The graph takes a fixed batch size (run it one input at a time)."""
        return isinstance(self.input_shape[0], int)


def open_package(path: str | Path, *, check_registry: bool = True) -> VerifiedPackage:
    """Verify a model package (see the module docstring) and return it.

    ``check_registry=False`` skips only the comparison with the registered sha256 (used by
    ``chexnet models add``, which is renewing it); every other check always runs.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelPackageError(path, "model package not found",
                                "pass an existing .onnx file with --model, or see "
                                "`chexnet models`")
    sha256 = file_sha256(path)
    if check_registry:
        entry = registered_entry_for(path)
        if entry is not None and sha256 != entry.sha256:
            raise ModelPackageError(path, f"package {entry.name!r} changed since it was "
                                          "registered",
                                    "re-register it with `chexnet models add PKG --name "
                                    f"{entry.name} --force` if the change is wanted")
    model = _parse(path)
    _check_external_data(path, model)
    card = _read_card(path, model)
    shape = _check_graph(path, model.graph, card)
    return VerifiedPackage(path, sha256, card, shape)


def check_external_data(path: str | Path) -> None:
    """Refuse a package whose tensors live in external files outside its own folder (an absolute
    location, a ``..`` escape or a symlink leading out)."""
    _check_external_data(Path(path), _parse(Path(path)))


def _parse(path: Path) -> Any:
    import onnx  # protobuf parsing is needed only when a package is opened, not on import

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises its own untyped errors
        raise ModelPackageError(path, f"it is not a readable ONNX file ({err})") from err


def _check_external_data(path: Path, model: Any) -> None:
    from onnx import TensorProto

    folder = path.resolve().parent
    for tensor in _all_tensors(model.graph):
        if tensor.data_location != TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        if not _inside(folder, location):
            raise ModelPackageError(
                path, f"tensor {tensor.name!r} keeps its data in {location!r}, outside the "
                      "package's folder", "use a package whose external data files sit beside "
                                          "it, or one saved as a single file")


def _inside(folder: Path, location: str) -> bool:
    if not location or PurePosixPath(location).is_absolute() or \
            PureWindowsPath(location).is_absolute() or PureWindowsPath(location).drive:
        return False
    if ".." in PureWindowsPath(location).parts:  # splits on both / and \
        return False
    return (folder / location).resolve().is_relative_to(folder)


def _all_tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of a graph: initializers, sparse initializers, constants, subgraphs."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def _read_card(path: Path, model: Any) -> ModelCard:
    meta = {p.key: p.value for p in model.metadata_props}
    if CARD_KEY not in meta:
        raise ModelPackageError(path, "no model card in its metadata (a bare ONNX graph, not a "
                                      "chexnet model package)")
    try:
        card = ModelCard.from_json(meta[CARD_KEY])
    except (ValueError, KeyError, TypeError) as err:
        raise ModelPackageError(path, f"its model card is invalid ({err})") from err
    if card.tta not in TTA_MODES:
        raise ModelPackageError(path, f"its card names an unknown test-time augmentation "
                                      f"{card.tta!r} (known: {', '.join(TTA_MODES)})")
    return card


def _shape(value_info: Any) -> list[Dim]:
    dims = value_info.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def _check_graph(path: Path, graph: Any, card: ModelCard) -> tuple[Dim, ...]:
    """The graph takes the card's input and returns probs + CAMs for the card's labels, and an
    ``ood_score`` [N] exactly when the card gives its limit (a score without a limit would gate
    nothing; a limit without a score would silently check nothing)."""
    weights = {t.name for t in graph.initializer}
    inputs = {i.name: _shape(i) for i in graph.input if i.name not in weights}
    outputs = {o.name: _shape(o) for o in graph.output}
    spec, n = card.preprocess, len(card.labels)
    if set(inputs) != {INPUT_NAME} or not {PROBS_NAME, CAMS_NAME} <= set(outputs):
        raise ModelPackageError(path, f"graph must take '{INPUT_NAME}' and return "
                                      f"'{PROBS_NAME}' and '{CAMS_NAME}'; it takes "
                                      f"{sorted(inputs)} and returns {sorted(outputs)}")
    if (OOD_NAME in outputs) != (card.ood is not None):
        raise ModelPackageError(path, f"graph {'has' if OOD_NAME in outputs else 'lacks'} the "
                                      f"'{OOD_NAME}' output but its card "
                                      f"{'gives no' if card.ood is None else 'gives an'} "
                                      "out-of-distribution limit; refit it with "
                                      "`chexnet-train ood-fit`")
    if OOD_NAME in outputs and len(outputs[OOD_NAME]) != 1:
        raise ModelPackageError(path, f"output '{OOD_NAME}' has shape {outputs[OOD_NAME]}; "
                                      "it must be [N], one score per input")
    shape = inputs[INPUT_NAME]
    expected = [spec.channels, spec.size, spec.size]
    if len(shape) != 4 or shape[1:] != expected:
        raise ModelPackageError(path, f"graph input shape {shape} disagrees with the card's "
                                      f"preprocessing [N, {expected}]")
    for name, rank in ((PROBS_NAME, 2), (CAMS_NAME, 4)):
        dims = outputs[name]
        if len(dims) != rank or (isinstance(dims[1], int) and dims[1] != n):
            raise ModelPackageError(path, f"output '{name}' has shape {dims}; the card lists "
                                          f"{n} labels")
    return tuple(shape)
