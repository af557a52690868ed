"""Step one of scoring, without a model: image -> :class:`PreparedInput`.

Scoring is split in two so that the half that needs no ONNX session can run anywhere:
:func:`prepare_input` (the intended-use gate, the model crop(s), the UIDs) is a function of the
image, the model card's preprocessing and the test-time augmentation only, and its result is a
small picklable value; :meth:`chexnet.inference.scoring.engine.Engine.score` (step two) runs the
model on prepared inputs and builds the :class:`~.prediction.Prediction`. ``Engine.predict`` is
the two steps in one process; the screener prepares in its decode worker processes (which never
load the model) and scores in the main process, so both compute every number the same way.

Crops are kept 8-bit (before mean/std): a twelfth of the float32 model input, which is what
crosses the screener's process boundary. :meth:`PreparedInput.model_input` normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.io.image import Image
from chexnet.inference.io.uids import DicomUids
from chexnet.inference.preprocessing import CropBox, PreprocessSpec
from chexnet.inference.scoring.decode_size import model_crop
from chexnet.inference.scoring.intended_use import check_intended_use
from chexnet.inference.scoring.tta import Crop, check_tta, normalise_crops, tta_crops


@dataclass(frozen=True)
class PreparedInput:
    """One image, ready to be scored by an engine whose card has preprocessing ``spec``.

    ``reasons`` non-empty: the gate refused the image (no ``pixels``); ``warnings``: what the
    gate says next to the scores. ``pixels`` are the 8-bit crops [K, S, S]: one centre crop
    (``tta == "none"``, its ``crop_box`` in ``image_shape``'s pixels) or the ``tta`` crops
    (``crops`` in the resized ``frame``, ``crop_box`` the whole image). ``image_shape`` is the
    decoded pixels' (rows, cols): a reduced decode's, when the image was decoded reduced.
    """

    path: Path
    spec: PreprocessSpec
    tta: str
    image_shape: tuple[int, int]
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    pixels: np.ndarray | None = None
    crop_box: CropBox | None = None
    crops: tuple[Crop, ...] = ()
    frame: tuple[int, int] | None = None
    uids: DicomUids = field(default_factory=DicomUids)

    @property
    def analyse(self) -> bool:
        return not self.reasons

    @property
    def n_inputs(self) -> int:
        """Model inputs this image needs (0 when not analysed)."""
        return 0 if self.pixels is None else len(self.pixels)

    def model_input(self) -> np.ndarray:
        """The model input, float32 [K, C, S, S]."""
        if self.pixels is None:
            raise ValueError(f"{self.path.name}: not analysed, no model input")
        return normalise_crops(self.pixels, self.spec)

def prepare_input(image: Image, spec: PreprocessSpec, tta: str = "none") -> PreparedInput:
    """Gate ``image`` and cut its model crop(s) for a model with preprocessing ``spec``.

    ``tta == "none"``: :func:`~.decode_size.model_crop` (the plain preprocessing, also
    right for an image decoded at reduced resolution); ``five-crop``/``ten-crop``:
    :func:`~.tta.tta_crops`, which are defined on the full-resolution image, so a reduced
    decode is refused (a ValueError: the caller loaded it with ``min_size``).
    """
    mode = check_tta(tta)
    decision = check_intended_use(image)
    meta = image.metadata
    common = dict(path=image.path, spec=spec, tta=mode, image_shape=image.shape,
                  reasons=decision.reasons, warnings=decision.warnings,
                  uids=meta.uids)
    if not decision.analyse:
        return PreparedInput(**common)
    if mode == "none":
        crop, box = model_crop(image, spec)
        return PreparedInput(**common, pixels=np.ascontiguousarray(crop)[None], crop_box=box)
    if image.is_reduced:
        raise ValueError(f"{image.path.name}: {mode} crops are cut from the full-resolution "
                         "image; load it without min_size")
    t = tta_crops(image.display_u8(), spec, mode)
    return PreparedInput(**common, pixels=t.pixels, crop_box=t.box, crops=t.crops,
                         frame=t.frame)
