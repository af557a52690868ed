"""The inference engine: one ONNX Runtime session over a model package, batched.

Provider order is TensorRT -> CUDA -> CPU, keeping those that can actually run here
(``onnxruntime-gpu`` lists the CUDA providers even on machines without a GPU, so the NVIDIA driver
is probed too). ``device="cuda"`` or ``"tensorrt"`` fails loudly when unavailable instead of
silently running on the CPU.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from chexnet.inference.errors import DeviceUnavailableError, ModelPackageError
from chexnet.inference.io.image import Image
from chexnet.inference.package.card import (
    CAMS_NAME,
    INPUT_NAME,
    OOD_NAME,
    PROBS_NAME,
    ModelCard,
)
from chexnet.inference.package.verify import VerifiedPackage, open_package
from chexnet.inference.scoring.ood import NO_OOD_WARNING, merge_ood, ood_reason
from chexnet.inference.scoring.prediction import ModelId, Prediction
from chexnet.inference.scoring.prepare import PreparedInput, prepare_input
from chexnet.inference.scoring.tta import check_tta, merge_cams, merge_probs
from chexnet.inference.status import Status

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
#: Below this share of the image inside the crop box, the result carries a warning.
MIN_SEEN_FRACTION = 0.7
_PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
             "tensorrt": "TensorrtExecutionProvider"}


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
    ood: np.ndarray | None = None  # [N]; None: the package has no out-of-distribution check


class Engine:
    """Run a model package on images.

    Parameters
    ----------
    package
        A model package (``.onnx`` with a model card in its metadata): a path, verified here
        (:func:`~chexnet.inference.package.verify.open_package`), or the
        :class:`~chexnet.inference.package.verify.VerifiedPackage` that
        :func:`~chexnet.inference.package.lookup.resolve_model` returns (not checked again).
    device
        ``auto`` (default), ``cpu``, ``cuda`` or ``tensorrt``.
    batch_size
        Model inputs per ONNX Runtime call: images without test-time augmentation, crops with
        it (an image's crops may span two calls).
    threads
        Intra-op threads for the CPU provider (default: ONNX Runtime's choice, the core count).
    check_registry
        Refuse a registered package whose file changed (for a path; only code that is
        re-registering the file turns this off).
    tta
        Test-time augmentation for :meth:`predict`: ``none``, ``five-crop`` or ``ten-crop``
        (:mod:`chexnet.inference.scoring.tta`). Default (None): the card's ``tta``, the augmentation
        its operating thresholds were chosen with; ``predict(..., tta=...)`` overrides per call.
    spin
        Let ONNX Runtime's CPU threads busy-wait between operators (its default). The screener
        turns it off: its decode processes need the same cores, and spinning threads take them.
    """

    def __init__(self, package: str | Path | VerifiedPackage, *, device: str = "auto",
                 batch_size: int = 8, threads: int | None = None, check_registry: bool = True,
                 tta: str | None = None, spin: bool = True) -> None:
        if not isinstance(package, VerifiedPackage):  # resolve_model's result is verified
            package = open_package(package, check_registry=check_registry)
        self.package = package
        self.batch_size = max(1, int(batch_size))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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
        self._fixed_batch = package.fixed_batch
        self._outputs = [PROBS_NAME, CAMS_NAME]
        if OOD_NAME in {o.name for o in self.session.get_outputs()}:
            self._outputs.append(OOD_NAME)  # open_package checked the card gives its limit
        self.tta = check_tta(tta) if tta is not None else self.card.tta
        self.model_id = ModelId(self.card.name, self.card.version, self.sha256, self.card.demo)
        self._thresholds = np.array([self.card.threshold(lb) for lb in self.card.labels],
                                    dtype=np.float32)
        log.info("model %s on %s", self.model_id.short, self.providers[0])

    @property
    def path(self) -> Path:
        return self.package.path

    @property
    def sha256(self) -> str:
        return self.package.sha256

    @property
    def card(self) -> ModelCard:
        return self.package.card

    @property
    def labels(self) -> tuple[str, ...]:
        return self.card.labels

    def run(self, batch: np.ndarray) -> RawOutput:
        """Run preprocessed inputs [N, C, S, S] through the graph (``ood`` when it has
        ``ood_score``)."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        step = 1 if self._fixed_batch else max(len(batch), 1)
        outs = [self.session.run(self._outputs, {INPUT_NAME: batch[i:i + step]})
                for i in range(0, len(batch), step)]
        probs, cams, *ood = (np.concatenate(parts) for parts in zip(*outs, strict=True))
        return RawOutput(probs, cams, ood[0].reshape(-1) if ood else None)

    def prepare(self, image: Image, *, tta: str | None = None) -> PreparedInput:
        """Step one of :meth:`predict` (gate, crops; no model run): :func:`~.prepare.prepare_input`
        with this engine's preprocessing and ``tta`` (default: the engine's)."""
        return prepare_input(image, self.card.preprocess, self.tta if tta is None else tta)

    def score(self, prepared: Sequence[PreparedInput]) -> list[Prediction]:
        """Step two of :meth:`predict`: run the model on prepared inputs, one
        :class:`Prediction` per input, in order.

        All their model inputs (one per image, or its crops with test-time augmentation) go
        through the model in run calls of ``batch_size`` inputs (an image's crops may span two);
        crops' probabilities (and out-of-distribution scores) are averaged and their CAMs merged
        over the image (:mod:`chexnet.inference.scoring.tta`); a gate-refused input, and one
        whose out-of-distribution score is above the card's limit
        (:mod:`chexnet.inference.scoring.ood`), becomes a ``not_analysed`` prediction in its
        place (the latter keeps its score, never its probabilities). The inputs may come from
        another process (:func:`~.prepare.prepare_input` needs no session), but from this
        model's preprocessing.
        """
        todo = [p for p in prepared if p.analyse]
        for p in todo:
            if p.spec != self.card.preprocess:
                raise ValueError(f"{p.path.name}: prepared for another model's preprocessing "
                                 f"({p.spec}); this model's is {self.card.preprocess}")
        ood = None
        if todo:
            x = np.concatenate([p.model_input() for p in todo])
            outs = [self.run(x[i:i + self.batch_size])
                    for i in range(0, len(x), self.batch_size)]
            probs = np.concatenate([o.probs for o in outs])
            cams = np.concatenate([o.cams for o in outs])
            ood = None if outs[0].ood is None else np.concatenate([o.ood for o in outs])
        results, at = [], 0
        for p in prepared:
            k = p.n_inputs if p.analyse else 0
            score = None if not k or ood is None else merge_ood(ood[at:at + k])
            reason = None if score is None else ood_reason(score, self.card.ood_threshold)
            if not p.analyse or reason:
                results.append(Prediction(
                    path=p.path, model=self.model_id, status=Status.NOT_ANALYSED,
                    labels=self.labels, reasons=p.reasons or (reason,), warnings=p.warnings,
                    image_shape=p.image_shape, uids=p.uids, ood_score=score,
                    tta=p.tta if reason else "none"))
                at += k
                continue
            fields = _merged(p, probs[at:at + k], cams[at:at + k])
            at += k
            warnings = p.warnings + fields.pop("warnings") + (() if score is not None
                                                              else (NO_OOD_WARNING,))
            results.append(Prediction(
                path=p.path, model=self.model_id,
                status=Status.of_scoring(True, warnings),
                labels=self.labels, thresholds=self._thresholds, image_shape=p.image_shape,
                warnings=warnings, tta=p.tta, uids=p.uids, ood_score=score, **fields))
        return results

    def predict(self, images: Iterable[Image], *, tta: str | None = None) -> list[Prediction]:
        """Gate, preprocess and score images; one :class:`Prediction` per image, in order:
        :meth:`score` of :meth:`prepare`, ``batch_size`` analysable images at a time (so at
        most that many images' crops are held at once).

        ``tta`` (default: the engine's, i.e. the card's unless the engine was given one):
        ``five-crop``/``ten-crop`` average the crops' probabilities and merge their CAMs over the
        whole image (:mod:`chexnet.inference.scoring.tta`); ``none`` scores the single centre crop.
        """
        mode = self.tta if tta is None else check_tta(tta)
        results: list[Prediction] = []
        pending: list[PreparedInput] = []
        for image in images:
            pending.append(self.prepare(image, tta=mode))
            if sum(p.analyse for p in pending) >= self.batch_size:
                results += self.score(pending)
                pending = []
        return results + self.score(pending)

    def predict_one(self, image: Image) -> Prediction:
        return self.predict([image])[0]


def _merged(p: PreparedInput, probs: np.ndarray, cams: np.ndarray) -> dict:
    """One image's model outputs (one row per crop) -> its Prediction fields."""
    if p.tta == "none":
        box = p.crop_box
        seen = (box.x1 - box.x0) * (box.y1 - box.y0) / (p.image_shape[0] * p.image_shape[1])
        return {"probabilities": probs[0].astype(np.float32), "cams": cams[0], "crop_box": box,
                "warnings": _seen_warning(seen)}
    merged, seen = merge_cams(cams, p.crops, p.frame, p.spec.size)
    return {"probabilities": merge_probs(probs), "cams": merged, "crop_box": p.crop_box,
            "warnings": _seen_warning(seen, f"the {p.tta} crops covered")}


def _seen_warning(seen: float, what: str = "the model saw") -> tuple[str, ...]:
    if seen < MIN_SEEN_FRACTION:
        return (f"{what} only the central {seen:.0%} of the image (its input is square)",)
    return ()
