"""The inference engine: one ONNX Runtime session over a model package, batched.

Provider order is TensorRT -> CUDA -> CPU, keeping those that can actually run here
(``onnxruntime-gpu`` lists the CUDA providers even on machines without a GPU, so the NVIDIA driver
is probed too). ``device="cuda"`` or ``"tensorrt"`` fails loudly when unavailable instead of
silently running on the CPU.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .card import CAMS_NAME, CARD_KEY, INPUT_NAME, PROBS_NAME, ModelCard
from .errors import DeviceUnavailableError, ModelPackageError
from .image import Image
from .intended_use import check_intended_use
from .prediction import ModelId, Prediction
from .preprocess import preprocess
from .tta import TTA_MODES, check_tta, merge_cams, merge_probs, tta_inputs

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
#: Below this share of the image inside the crop box, the result carries a warning.
MIN_SEEN_FRACTION = 0.7
_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, hashed once per (file, size, modification time): resolving, verifying
    and loading a 28 MB package all ask for it."""
    st = os.stat(path)
    return _sha256_of(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _loadable(*names: str) -> bool:
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def select_providers(device: str = "auto") -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = set(ort.get_available_providers())
    gpu = _loadable("libcuda.so.1", "nvcuda.dll")
    if device == "auto":
        wanted = []
        if gpu and "TensorrtExecutionProvider" in available and _loadable(
                "libnvinfer.so.10", "libnvinfer.so.8", "nvinfer_10.dll"):
            wanted.append("TensorrtExecutionProvider")
        if gpu and "CUDAExecutionProvider" in available:
            wanted.append("CUDAExecutionProvider")
        return [*wanted, "CPUExecutionProvider"]
    provider = _PROVIDER[device]
    if provider not in available:
        raise DeviceUnavailableError(
            f"--device {device}: this onnxruntime build has no {provider} "
            f"(it has {', '.join(sorted(available))}); install onnxruntime-gpu")
    if not gpu:
        raise DeviceUnavailableError(f"--device {device}: no NVIDIA GPU driver found on this "
                                     "machine; use --device cpu or auto")
    if device == "tensorrt":  # TensorRT hands the nodes it cannot build to CUDA, then the CPU
        return [provider, "CUDAExecutionProvider", "CPUExecutionProvider"]
    return [provider, "CPUExecutionProvider"]


@dataclass(frozen=True)
class RawOutput:
    probs: np.ndarray  # [N, C]
    cams: np.ndarray  # [N, C, h, w]


class Engine:
    """Run a model package on images.

    Parameters
    ----------
    package
        Path to a model package (``.onnx`` with a model card in its metadata).
    device
        ``auto`` (default), ``cpu``, ``cuda`` or ``tensorrt``.
    batch_size
        Model inputs per ONNX Runtime call: images without test-time augmentation, crops with
        it (an image's crops may span two calls).
    threads
        Intra-op threads for the CPU provider (default: ONNX Runtime's choice, the core count).
    check_registry
        Refuse a registered package whose file changed, or external data outside its folder
        (only ``chexnet models add``, which is re-registering the file, turns this off).
    tta
        Test-time augmentation for :meth:`predict`: ``none``, ``five-crop`` or ``ten-crop``
        (:mod:`chexnet.inference.tta`). Default (None): the card's ``tta``, the augmentation
        its operating thresholds were chosen with; ``predict(..., tta=...)`` overrides per call.
    """

    def __init__(self, package: str | Path, *, device: str = "auto", batch_size: int = 8,
                 threads: int | None = None, check_registry: bool = True,
                 tta: str | None = None) -> None:
        self.path = Path(package)
        if not self.path.is_file():
            raise ModelPackageError(self.path, "model package not found",
                                    "pass an existing .onnx file with --model, or see "
                                    "`chexnet models`")
        from .registry import verify_package  # registry uses Engine: import here, not at top

        if check_registry:  # changed since registered? external data outside its folder?
            verify_package(self.path)
        self.batch_size = max(1, int(batch_size))
        self.sha256 = file_sha256(self.path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        providers = select_providers(device)
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise ModelPackageError(self.path, f"ONNX Runtime cannot load it ({err})") from err
        self.providers = tuple(self.session.get_providers())
        if device in ("cuda", "tensorrt") and self.providers[0] != _PROVIDER[device]:
            raise DeviceUnavailableError(
                f"--device {device}: ONNX Runtime fell back to {self.providers[0]} (CUDA/cuDNN "
                "libraries missing?); use --device cpu or install the CUDA runtime")
        self.card = self._read_card()
        self._check_graph()
        if self.card.tta not in TTA_MODES:
            raise ModelPackageError(self.path, f"its card names an unknown test-time "
                                               f"augmentation {self.card.tta!r} (known: "
                                               f"{', '.join(TTA_MODES)})")
        self.tta = check_tta(tta) if tta is not None else self.card.tta
        self.model_id = ModelId(self.card.name, self.card.version, self.sha256, self.card.demo)
        self._thresholds = np.array([self.card.threshold(lb) for lb in self.card.labels],
                                    dtype=np.float32)
        log.info("model %s on %s", self.model_id.short, self.providers[0])

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def _read_card(self) -> ModelCard:
        meta = self.session.get_modelmeta().custom_metadata_map
        if CARD_KEY not in meta:
            raise ModelPackageError(self.path, "no model card in its metadata (a bare ONNX "
                                               "graph, not a chexnet model package)")
        try:
            return ModelCard.from_json(meta[CARD_KEY])
        except (ValueError, KeyError, TypeError) as err:
            raise ModelPackageError(self.path, f"its model card is invalid ({err})") from err

    def _check_graph(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        spec, n = self.card.preprocess, len(self.card.labels)
        if set(inputs) != {INPUT_NAME} or not {PROBS_NAME, CAMS_NAME} <= set(outputs):
            raise ModelPackageError(self.path, f"graph must take '{INPUT_NAME}' and return "
                                               f"'{PROBS_NAME}' and '{CAMS_NAME}'; it takes "
                                               f"{sorted(inputs)} and returns {sorted(outputs)}")
        shape = inputs[INPUT_NAME].shape
        expected = [spec.channels, spec.size, spec.size]
        if len(shape) != 4 or [d for d in shape[1:]] != expected:
            raise ModelPackageError(self.path, f"graph input shape {shape} disagrees with the "
                                               f"card's preprocessing [N, {expected}]")
        for name, rank in ((PROBS_NAME, 2), (CAMS_NAME, 4)):
            dims = outputs[name].shape
            if len(dims) != rank or (isinstance(dims[1], int) and dims[1] != n):
                raise ModelPackageError(self.path, f"output '{name}' has shape {dims}; the card "
                                                   f"lists {n} labels")
        self._fixed_batch = isinstance(shape[0], int)

    def run(self, batch: np.ndarray) -> RawOutput:
        """Run preprocessed inputs [N, C, S, S] through the graph."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        step = 1 if self._fixed_batch else max(len(batch), 1)
        probs, cams = [], []
        for i in range(0, len(batch), step):
            p, c = self.session.run([PROBS_NAME, CAMS_NAME], {INPUT_NAME: batch[i:i + step]})
            probs.append(p)
            cams.append(c)
        return RawOutput(np.concatenate(probs), np.concatenate(cams))

    def predict(self, images: Sequence[Image], *, tta: str | None = None) -> list[Prediction]:
        """Gate, preprocess and score images; one :class:`Prediction` per image, in order.

        ``tta`` (default: the engine's, i.e. the card's unless the engine was given one):
        ``five-crop``/``ten-crop`` average the crops' probabilities and merge their CAMs over the
        whole image (:mod:`chexnet.inference.tta`); ``none`` scores the single centre crop.
        """
        mode = self.tta if tta is None else check_tta(tta)
        results: list[Prediction | None] = [None] * len(images)
        todo: list[tuple[int, Image, tuple[str, ...]]] = []
        for idx, image in enumerate(images):
            decision = check_intended_use(image)
            if not decision.analyse:
                results[idx] = self._not_analysed(image, decision.reasons, decision.warnings)
            else:
                todo.append((idx, image, decision.warnings))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            score = self._score_plain if mode == "none" else self._score_tta
            for (idx, image, warnings), fields in zip(chunk, score(chunk, mode), strict=True):
                warnings = warnings + fields.pop("warnings")
                results[idx] = Prediction(
                    path=image.path, model=self.model_id,
                    status="analysed_with_warnings" if warnings else "analysed",
                    labels=self.labels, thresholds=self._thresholds, image_shape=image.shape,
                    warnings=warnings, tta=mode, **fields, **_uids(image))
        return [r for r in results if r is not None]

    def _score_plain(self, chunk, _mode: str) -> list[dict]:
        """One centre crop per image, one run call (the behaviour before TTA existed)."""
        inputs = [preprocess(image.display_u8(), self.card.preprocess) for _, image, _ in chunk]
        out = self.run(np.stack([x for x, _ in inputs]))
        fields = []
        for j, ((_, image, _), (_x, box)) in enumerate(zip(chunk, inputs, strict=True)):
            seen = (box.x1 - box.x0) * (box.y1 - box.y0) / (image.shape[0] * image.shape[1])
            fields.append({"probabilities": out.probs[j].astype(np.float32),
                           "cams": out.cams[j], "crop_box": box,
                           "warnings": _seen_warning(seen)})
        return fields

    def _score_tta(self, chunk, mode: str) -> list[dict]:
        """Every crop of every image in the chunk (``batch_size`` images), in run calls of
        ``batch_size`` inputs each (only the last one part-filled)."""
        spec = self.card.preprocess
        inputs = [tta_inputs(image.display_u8(), spec, mode) for _, image, _ in chunk]
        stacked = np.concatenate([t.x for t in inputs])
        outs = [self.run(stacked[i:i + self.batch_size])
                for i in range(0, len(stacked), self.batch_size)]
        probs = np.concatenate([o.probs for o in outs])
        cams = np.concatenate([o.cams for o in outs])
        fields, at = [], 0
        for t in inputs:
            k = len(t.crops)
            merged, seen = merge_cams(cams[at:at + k], t.crops, t.frame, spec.size)
            fields.append({"probabilities": merge_probs(probs[at:at + k]), "cams": merged,
                           "crop_box": t.box,
                           "warnings": _seen_warning(seen, f"the {mode} crops covered")})
            at += k
        return fields

    def predict_one(self, image: Image) -> Prediction:
        return self.predict([image])[0]

    def _not_analysed(self, image: Image, reasons: Iterable[str],
                      warnings: Iterable[str] = ()) -> Prediction:
        return Prediction(path=image.path, model=self.model_id, status="not_analysed",
                          labels=self.labels, reasons=tuple(reasons), warnings=tuple(warnings),
                          image_shape=image.shape, **_uids(image))


def _seen_warning(seen: float, what: str = "the model saw") -> tuple[str, ...]:
    if seen < MIN_SEEN_FRACTION:
        return (f"{what} only the central {seen:.0%} of the image (its input is square)",)
    return ()


def _uids(image: Image) -> dict:
    m = image.metadata
    return {"sop_instance_uid": m.sop_instance_uid, "study_uid": m.study_uid,
            "series_uid": m.series_uid}
