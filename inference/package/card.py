"""The model card: everything needed to run and to trust a model, stored inside the .onnx file.

The card travels as JSON in the ONNX model's ``metadata_props`` under :data:`CARD_KEY`, so a
package is one file that cannot lose its labels, preprocessing or operating points.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from chexnet.inference.preprocessing import PreprocessSpec

CARD_KEY = "chexnet.model_card"
CARD_SCHEMA = 1
INPUT_NAME = "image"
PROBS_NAME = "probs"
CAMS_NAME = "cams"
#: Optional third output [N]: how far the image's pooled features lie from the training images'
#: (:mod:`chexnet.inference.scoring.ood`); present exactly when the card has ``ood``.
OOD_NAME = "ood_score"
#: Operating threshold for a label whose card gives none.
DEFAULT_THRESHOLD = 0.5
#: What ``probs`` mean. ``multi-label``: one sigmoid per label, independent (CheXNet).
#: ``single-label``: a softmax over the labels (they sum to 1; the predicted class is the
#: argmax), for models trained on images carrying exactly one label (the hospital CAD paper's
#: single-disease task). Cards written before this field existed are multi-label.
TASKS = ("multi-label", "single-label")

#: Precisions a card may allow (``precision``), and the fp16 parity that allows fp16: the
#: largest |delta p| between the fp16 and fp32 graphs (issue 17's TensorRT fp16 target).
PRECISIONS = ("fp32", "fp16")
FP16_MAX_ABS_DIFF = 0.01

#: What every output of a demo model says (the card's ``demo`` flag), in one spelling.
DEMO_NOTICE = "DEMO MODEL: not for clinical use."

#: Label names (any case, "_" or " ") that mean "no finding": the absence of findings, never a
#: finding itself (never ranked, never drawn as a heat map, never in an abnormal score).
NORMAL_LABELS = ("normal", "no finding")


def label_key(label: str) -> str:
    """How labels are compared everywhere: case, spaces, "_" and "-" do not matter
    ("pleural effusion" == "Pleural_Effusion")."""
    return " ".join(label.replace("_", " ").replace("-", " ").lower().split())


def match_label(text: str, labels: tuple[str, ...] | list[str]) -> str | None:
    """The label of ``labels`` that ``text`` names (see :func:`label_key`), or None."""
    key = label_key(text)
    return next((label for label in labels if label_key(label) == key), None)


def is_normal_label(label: str) -> bool:
    return label_key(label) in NORMAL_LABELS


def match_finding(text: str, labels: tuple[str, ...] | list[str]) -> str | None:
    """The finding (a label that is not "normal": normal has no heat map) that ``text`` names,
    or None. What ``--finding`` means in ``chexnet predict`` and the viewer."""
    label = match_label(text, labels)
    return None if label is None or is_normal_label(label) else label


def unknown_finding_message(text: str, labels: tuple[str, ...] | list[str]) -> str:
    """The usage error for a ``--finding`` the model does not know."""
    known = ", ".join(label for label in labels if not is_normal_label(label))
    return f"--finding {text!r} is not a label of this model; it knows: {known}"


#: ChestX-ray14's 14 pathologies in the order of the NIH release and the CheXNet paper.
CHESTXRAY14_LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)


@dataclass(frozen=True)
class ModelCard:
    """What a model package says about itself (see docs in README, "The model package")."""

    name: str
    version: str
    labels: tuple[str, ...]
    preprocess: PreprocessSpec
    thresholds: dict[str, float]
    threshold_rule: str = "unset: 0.5 for every label"
    demo: bool = True
    description: str = ""
    arch: str = "densenet121"
    tta: str = "none"
    task: str = "multi-label"
    training_data: dict[str, Any] = field(default_factory=dict)
    validation_metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: The out-of-distribution check, or None (a package without one; cards written before it
    #: existed). Schema (JSON object): ``threshold`` (float, required: a score above it is not
    #: analysed), ``score`` ("mahalanobis_distance": the distance, not its square),
    #: ``method``, ``feature_tensor`` (graph tensor pooled), ``feature_dim``, ``n_reference``
    #: (reference images), ``reference_data``, ``covariance`` (estimator and shrinkage),
    #: ``percentile`` and ``threshold_rule`` (how the threshold was set), ``rates`` (measured
    #: rejection rates: a list of {"set", "n", "rejected", "rate"}), ``citation``.
    ood: dict[str, Any] | None = None
    #: The lowest precision the model may run in: ``fp32`` (default; cards written before it
    #: existed), or ``fp16`` (TensorRT may build an fp16 engine): export sets fp16 only when
    #: the fp16 graph's measured |delta p| is within :data:`FP16_MAX_ABS_DIFF`.
    precision: str = "fp32"
    #: What export measured: {"max_abs_diff": float, "images": int, "how": str}, or
    #: {"status": "unmeasured", "why": str}; None for cards written before it existed.
    fp16_parity: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels) or not self.labels:
            raise ValueError("labels must be non-empty and unique")
        unknown = set(self.thresholds) - set(self.labels)
        if unknown:
            raise ValueError(f"thresholds for unknown labels: {sorted(unknown)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not "
                             f"{self.precision!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.ood is not None:
            limit = self.ood.get("threshold") if isinstance(self.ood, dict) else None
            if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
                raise ValueError(f"ood must be an object with a positive 'threshold', not "
                                 f"{self.ood!r:.80}")

    @property
    def ood_threshold(self) -> float | None:
        """The out-of-distribution limit (None: the package has no such check)."""
        return None if self.ood is None else float(self.ood["threshold"])

    def threshold(self, label: str) -> float:
        return float(self.thresholds.get(label, DEFAULT_THRESHOLD))

    def to_json(self) -> str:
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["preprocess"] = self.preprocess.to_dict()
        d["schema"] = CARD_SCHEMA
        return json.dumps(d, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        d = json.loads(text)
        d.pop("schema", None)
        d["labels"] = tuple(d["labels"])
        d["preprocess"] = PreprocessSpec.from_dict(d.get("preprocess", {}))
        d["thresholds"] = {k: float(v) for k, v in d.get("thresholds", {}).items()}
        known = set(cls.__dataclass_fields__)
        extra = {k: v for k, v in d.items() if k not in known}
        d = {k: v for k, v in d.items() if k in known}
        d.setdefault("extra", {}).update(extra)
        return cls(**d)


def attach_card(model_proto: Any, card: ModelCard) -> None:
    """Write ``card`` into an ``onnx.ModelProto``'s metadata (replacing any earlier card).

    Duck-typed on purpose: the inference room does not need the ``onnx`` package to run models.
    """
    props = model_proto.metadata_props
    for i in reversed(range(len(props))):
        if props[i].key == CARD_KEY:
            del props[i]
    entry = props.add()
    entry.key = CARD_KEY
    entry.value = card.to_json()
