"""The inference engine: one ONNX Runtime session over a model package, batched.

Providers (TensorRT -> CUDA -> CPU, what can run here) and their options are
:mod:`~chexnet.inference.scoring.providers`'s; the session, the TensorRT engine cache and the
runner (IO binding on a GPU) :mod:`~chexnet.inference.scoring.session`'s. On the CPU the engine
calls ``session.run`` with ONNX Runtime's default CPU options, as it always did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from chexnet.inference.io.image import Image
from chexnet.inference.package.card import CAMS_NAME, OOD_NAME, PROBS_NAME, ModelCard
from chexnet.inference.package.verify import VerifiedPackage, open_package
from chexnet.inference.scoring.ood import NO_OOD_WARNING, merge_ood, ood_reason
from chexnet.inference.scoring.prediction import ModelId, Prediction
from chexnet.inference.scoring.prepare import PreparedInput, prepare_input
from chexnet.inference.scoring.providers import DEVICES, select_providers
from chexnet.inference.scoring.session import open_session, runner_for
from chexnet.inference.scoring.tta import check_tta, merge_cams, merge_probs
from chexnet.inference.status import Status

log = logging.getLogger(__name__)

__all__ = ["DEVICES", "Engine", "RawOutput", "select_providers"]
#: Below this share of the image inside the crop box, the result carries a warning.
MIN_SEEN_FRACTION = 0.7


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
        it (an image's crops may span two calls); ``"auto"``: the largest that fits the
        device's memory (:mod:`~chexnet.inference.scoring.batch_size`).
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
    cuda_graph
        On CUDA/TensorRT, capture and replay CUDA graphs: inputs and outputs in device buffers
        of ``batch_size`` allocated once (a short batch is padded). Ignored on the CPU.
    """

    def __init__(self, package: str | Path | VerifiedPackage, *, device: str = "auto",
                 batch_size: int | str = 8, threads: int | None = None, check_registry: bool = True,
                 tta: str | None = None, spin: bool = True, cuda_graph: bool = False) -> None:
        if not isinstance(package, VerifiedPackage):  # resolve_model's result is verified
            package = open_package(package, check_registry=check_registry)
        self.package = package
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opened = open_session(package, device, batch_size, options, cuda_graph)
        self.session, self.providers = opened.session, opened.providers
        self.batch_size, self.precision = opened.batch_size, opened.precision
        self.trt_cache = opened.trt_cache
        self._fixed_batch = package.fixed_batch
        self._outputs = [PROBS_NAME, CAMS_NAME]
        if OOD_NAME in {o.name for o in self.session.get_outputs()}:
            self._outputs.append(OOD_NAME)  # open_package checked the card gives its limit
        size = self.card.preprocess.size
        self.runner = runner_for(opened, self._outputs, self._fixed_batch, (3, size, size),
                                  cuda_graph)
        self.tta = check_tta(tta) if tta is not None else self.card.tta
        self.model_id = ModelId(self.card.name, self.card.version, self.sha256, self.card.demo)
        self._thresholds = np.array([self.card.threshold(lb) for lb in self.card.labels],
                                    dtype=np.float32)
        log.info("model %s on %s (%s, batch %d)", self.model_id.short, self.providers[0],
                 self.precision, self.batch_size)

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
        step = self.runner.max_batch or (1 if self._fixed_batch else max(len(batch), 1))
        outs = [self.runner.run(batch[i:i + step]) for i in range(0, len(batch), step)]
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
