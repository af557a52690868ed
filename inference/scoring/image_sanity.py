"""Image sanity: refuse, with a stated reason, pixels no radiograph has, before the model sees them.

The model scores whatever it is given, and a blank or garbled image can come out with a high
probability (before this gate an all-black image scored Consolidation 0.98 with the demo
model). These checks look at the pixels as the model would see them (the 8-bit display
rendering, :meth:`~chexnet.inference.io.image.Image.display_u8`) and at the modality values:

* **non-finite values** (a NaN or infinite rescale slope, NaN float pixel data): any at all;
* **no contrast**: the 1st to 99th percentile spread of the rendering under
  :data:`MIN_CONTRAST_LEVELS` grey levels (uniform, near-uniform, or a window or VOI LUT that maps
  everything to one value). On the 420 NIH sample images the spread is 100 to 249 levels;
* **mostly saturated**: over :data:`MAX_SATURATED` of the pixels pure black or pure white (on the
  NIH sample at most 37 %, 1.2 % median: collimation borders are black);
* **noise**: neighbouring pixels (at most 512 a side) differing on average by over
  :data:`MAX_ROUGHNESS` of the image's 1-99 % spread: a garbled decode (a damaged JPEG 2000
  codestream decodes to noise) or a noise image. Radiographs are smooth at that scale: 0.006 to
  0.022 on the NIH sample, 0.011 on pydicom-data's CR; Gaussian or uniform noise 0.24 to 0.34;
* **colour content**: at least :data:`MAX_COLOUR_FRACTION` of the pixels visibly coloured
  (:func:`~chexnet.inference.io.image.colour_fraction`): a photograph (the two photos
  scikit-learn ships: 47 % and 87 %), not a radiograph stored as RGB (0) or one with a coloured
  marker (a few percent, analysed with a warning).

Whether an image looks like the chest radiographs the model learnt from is a separate check, on
the model's own features (the package's out-of-distribution score, applied when it is scored).
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

from chexnet.inference.io.image import Image

MIN_CONTRAST_LEVELS = 16
MAX_SATURATED = 0.6
MAX_COLOUR_FRACTION = 0.2
MAX_ROUGHNESS = 0.1
ROUGHNESS_SIDE = 512


def pixel_reasons(image: Image) -> list[str]:
    """Why the image's pixels cannot be scored (empty: they can)."""
    reasons = []
    bad = non_finite_fraction(image)
    if bad > 0:
        reasons.append(f"{_percent(bad)} of the pixel values are not finite numbers (NaN or "
                       "infinite: check the rescale slope and intercept, or the float pixel "
                       "data): not analysed")
    colour = image.metadata.colour_fraction
    if colour is not None and colour >= MAX_COLOUR_FRACTION:
        reasons.append(f"a colour picture ({_percent(colour)} of the pixels are coloured; a "
                       "radiograph is grey): not a radiograph")
    display = image.display_u8()
    sample = display[::2, ::2] if display.size > 1_000_000 else display
    lo, hi = np.percentile(sample, (1, 99))
    if hi - lo < MIN_CONTRAST_LEVELS and not bad:
        reasons.append(f"no contrast: 98% of the pixels lie within {hi - lo:.0f} of 255 grey "
                       "levels (a blank or uniform image, or a window that hides everything)")
    else:
        saturated = float(np.mean((sample == 0) | (sample == 255)))
        if saturated > MAX_SATURATED and not bad:
            reasons.append(f"{_percent(saturated)} of the pixels are pure black or white "
                           "(mostly saturated: a wrong window or rescale, or not a radiograph)")
        elif (rough := roughness(display)) > MAX_ROUGHNESS and not bad:
            reasons.append(f"looks like noise (neighbouring pixels differ by {_percent(rough)} "
                           "of the image's contrast on average; a radiograph is smooth): a "
                           "damaged or garbled image")
    return reasons


def roughness(display: np.ndarray) -> float:
    """Mean absolute difference of neighbouring pixels over the 1-99 % spread, on the image
    reduced (box filter) to at most :data:`ROUGHNESS_SIDE` pixels a side."""
    pil = PILImage.fromarray(np.ascontiguousarray(display))
    scale = max(display.shape) / ROUGHNESS_SIDE
    if scale > 1:
        pil = pil.resize((max(1, round(display.shape[1] / scale)),
                          max(1, round(display.shape[0] / scale))), PILImage.Resampling.BOX)
    px = np.asarray(pil, dtype=np.float32)
    lo, hi = np.percentile(px, (1, 99))
    steps = np.abs(np.diff(px, axis=1)).mean() + np.abs(np.diff(px, axis=0)).mean()
    return float(steps / 2 / max(hi - lo, 1.0))


def non_finite_fraction(image: Image) -> float:
    """Fraction of modality values (after rescale / modality LUT) that are NaN or infinite."""
    stored = image.stored
    if image.modality_lut is None and stored.dtype.kind != "f":
        return 0.0
    sample = stored if stored.dtype.kind == "f" else stored[::4, ::4]
    with np.errstate(all="ignore"):  # overflow to inf is what is being measured
        values = np.asarray(sample if image.modality_lut is None else image.modality_lut(sample))
    if values.dtype.kind != "f":
        return 0.0
    return float(1.0 - np.isfinite(values).mean()) if values.size else 0.0


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%" if fraction < 0.995 else "all"
