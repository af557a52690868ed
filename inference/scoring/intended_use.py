"""The intended-use gate: decide, with a stated reason, whether an image is scored.

CheXNet was trained and validated on adult and paediatric frontal (PA/AP) chest radiographs from
one hospital (ChestX-ray14). Scores outside that domain are meaningless, so:

* **not analysed** (no scores at all): a modality that is not a radiograph (CR, DX, DR), a body
  part that is present and not the chest, a view that is present and not frontal (lateral,
  decubitus, oblique...), an image under 64 pixels a side or more than 3 times longer than wide,
  and pixels no radiograph has (:mod:`.image_sanity`: non-finite values, no contrast, mostly
  saturated, a colour picture).
* **analysed with warnings**: a patient younger than 18, a multi-frame object (frame 1 scored), a
  colour image (converted to grey), and DICOM images that do not say which view or body part they
  are (PNG/JPEG never say; that is normal and not warned about).

The gate never changes a score; it only decides whether one is produced and what is said next to
it. The README's "Using chexnet predict" section states the same rules for users.
"""

from __future__ import annotations

from dataclasses import dataclass

from chexnet.inference.io.image import (
    CHEST_BODY_PARTS,
    FRONTAL_VIEWS,
    RADIOGRAPH_MODALITIES,
    Image,
)
from chexnet.inference.scoring.image_sanity import pixel_reasons
from chexnet.inference.status import Status

ADULT_AGE_YEARS = 18.0
MIN_SIDE_PX = 64  # below this, nothing a radiograph shows survives
MAX_ASPECT = 3.0  # chest detectors are at most about 43 x 35 cm; 3:1 is no chest film


@dataclass(frozen=True)
class GateDecision:
    analyse: bool
    reasons: tuple[str, ...]  # why not analysed (empty when analysed)
    warnings: tuple[str, ...]  # what to say next to the scores

    @property
    def status(self) -> Status:
        """The gate's verdict in the one status vocabulary."""
        return Status.of_scoring(self.analyse, self.warnings)


def check_intended_use(image: Image) -> GateDecision:
    meta = image.metadata
    reasons: list[str] = []
    warnings: list[str] = list(image.warnings)
    if meta.modality and meta.modality not in RADIOGRAPH_MODALITIES:
        reasons.append(f"modality {meta.modality}: not a radiograph (CR/DX)")
    if meta.body_part and not any(part in meta.body_part for part in CHEST_BODY_PARTS):
        reasons.append(f"body part {meta.body_part}: not a chest")
    if meta.view_position and meta.view_position not in FRONTAL_VIEWS:
        kind = "lateral" if meta.view_position in ("LL", "RL", "LATERAL", "LAT") else "non-frontal"
        reasons.append(f"{kind} view ({meta.view_position}): not analysed, the model reads "
                       "frontal (PA/AP) views only")
    h, w = image.shape
    if min(h, w) < MIN_SIDE_PX:
        reasons.append(f"image is {w}x{h} pixels: too small to be a radiograph")
    elif max(h, w) / min(h, w) > MAX_ASPECT:
        reasons.append(f"image is {w}x{h} pixels: too elongated to be a chest radiograph")
    if not reasons:  # the pixels themselves: blank, non-finite, saturated, a colour picture
        reasons += pixel_reasons(image)
    if meta.source == "dicom":
        if not meta.view_position:
            warnings.append("view position not recorded: frontal view assumed")
        if not meta.body_part:
            warnings.append("body part not recorded: chest assumed")
    if meta.age_unreadable:  # the value itself is not repeated: ages are patient data
        warnings.append("the patient's age in the header is malformed or zero: age unknown")
    if meta.patient_age_years is not None and meta.patient_age_years < ADULT_AGE_YEARS:
        warnings.append(f"patient younger than {ADULT_AGE_YEARS:.0f} "
                        f"({meta.patient_age_years:.1f} y): the model is not validated on "
                        "children")
    return GateDecision(analyse=not reasons, reasons=tuple(reasons), warnings=tuple(warnings))
