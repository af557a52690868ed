"""What the engine returns for one image: what the viewer shows, the CLI prints, the screener
writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.io.uids import DicomUids
from chexnet.inference.package.card import is_normal_label
from chexnet.inference.preprocessing import CropBox
from chexnet.inference.status import Status


@dataclass(frozen=True)
class ModelId:
    name: str
    version: str
    sha256: str
    demo: bool

    @property
    def short(self) -> str:
        return f"{self.name} {self.version} (sha256 {self.sha256[:12]})"


@dataclass(frozen=True)
class Finding:
    label: str
    probability: float
    threshold: float

    @property
    def above_threshold(self) -> bool:
        return self.probability >= self.threshold


@dataclass(frozen=True)
class Prediction:
    """The result for one image.

    ``status`` (:class:`~chexnet.inference.status.Status`) is ``analysed``,
    ``analysed_with_warnings`` or ``not_analysed``; scores and CAMs
    exist only when analysed. ``cams`` holds the raw CAMs at feature-map resolution [C, h, w], in
    label order, over ``crop_box``; :mod:`chexnet.inference.render.cam` maps them onto the image.
    With test-time augmentation (``tta`` other than ``none``) they are the crops' CAMs merged
    over the whole image (:func:`chexnet.inference.scoring.tta.merge_cams`: twice the
    feature-map density, NaN where no crop looked) and ``crop_box`` is the whole image.
    ``ood_score`` is the model's out-of-distribution score (:mod:`chexnet.inference.scoring.ood`;
    the crops' mean with test-time augmentation), kept also when it made the image not analysed;
    None when the package has no such check or the intended-use gate refused the image first.
    """

    path: Path
    model: ModelId
    status: Status
    labels: tuple[str, ...]
    probabilities: np.ndarray | None = None
    thresholds: np.ndarray | None = None
    cams: np.ndarray | None = None
    crop_box: CropBox | None = None
    image_shape: tuple[int, int] | None = None
    warnings: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    uids: DicomUids = field(default_factory=DicomUids)
    tta: str = "none"
    extras: dict = field(default_factory=dict)
    ood_score: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # a plain string is accepted

    @property
    def analysed(self) -> bool:
        return self.status is not Status.NOT_ANALYSED

    @property
    def ranked(self) -> list[Finding]:
        """Findings by decreasing probability (empty when not analysed). A "normal" / "No
        Finding" output is not a finding (the absence of findings): it is never ranked."""
        if self.probabilities is None or self.thresholds is None:
            return []
        order = np.argsort(-self.probabilities, kind="stable")
        return [Finding(self.labels[i], float(self.probabilities[i]), float(self.thresholds[i]))
                for i in order if not is_normal_label(self.labels[i])]

    @property
    def positives(self) -> list[Finding]:
        return [f for f in self.ranked if f.above_threshold]

    @property
    def top(self) -> Finding | None:
        ranked = self.ranked
        return ranked[0] if ranked else None

    def cam(self, label: str) -> np.ndarray:
        if self.cams is None:
            raise ValueError(f"{self.path.name}: not analysed, no CAM")
        try:
            return self.cams[self.labels.index(label)]
        except ValueError:
            raise KeyError(f"unknown finding {label!r}; the model knows: "
                           f"{', '.join(self.labels)}") from None

    def to_dict(self) -> dict:
        """JSON-ready summary (no CAM arrays, no patient data)."""
        return {
            "path": str(self.path),
            "status": self.status.value,
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
            "model": {"name": self.model.name, "version": self.model.version,
                      "sha256": self.model.sha256, "demo": self.model.demo},
            **self.uids.record(),
            "tta": self.tta,
            "ood_score": None if self.ood_score is None else round(self.ood_score, 4),
            "findings": [{"label": f.label, "probability": round(f.probability, 6),
                          "threshold": round(f.threshold, 6),
                          "above_threshold": f.above_threshold} for f in self.ranked],
            "crop_box": None if self.crop_box is None else [
                round(v, 2) for v in (self.crop_box.x0, self.crop_box.y0,
                                      self.crop_box.x1, self.crop_box.y1)],
        }
