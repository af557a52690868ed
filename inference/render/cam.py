"""Class activation maps on the image: upsample, normalise, threshold, colour, blend.

CAM (Zhou et al., CVPR 2016; used by CheXNet, Rajpurkar et al. 2017): for class c,
``CAM_c = sum_k w_ck f_k`` over the final ReLU feature maps ``f_k`` and the classifier weights
``w_ck``. The model package computes it in-graph at feature-map resolution (7x7 for 224 input);
this module maps it back onto the image region the model saw (the crop box) and renders it. The
viewer and the screener call the same functions.

Example
-------
>>> import numpy as np
>>> from chexnet.inference.preprocessing import CropBox
>>> cam = np.zeros((7, 7), np.float32); cam[3, 3] = 1.0
>>> heat = cam_on_image(cam, CropBox(0, 0, 70, 70), image_shape=(70, 70))
>>> heat.shape, float(np.nanmax(heat))
((70, 70), 1.0)
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

from chexnet.inference.preprocessing import CropBox

# matplotlib's "jet" segment data (the colour map of the CheXNet figures), as control points;
# kept here so the inference room needs no plotting library.
_JET = {
    "r": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "g": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "b": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}


def jet_lut(n: int = 256) -> np.ndarray:
    """The jet colour map as an ``n`` x 3 uint8 table."""
    x = np.linspace(0.0, 1.0, n)
    channels = [np.interp(x, *zip(*_JET[c], strict=True)) for c in "rgb"]
    return np.clip(np.rint(np.stack(channels, axis=1) * 255), 0, 255).astype(np.uint8)


def normalise_cam(cam: np.ndarray) -> np.ndarray:
    """Min-max scale one CAM to [0, 1] (a constant map becomes all zeros; NaN cells, which a
    merged test-time-augmentation CAM has where no crop looked, stay NaN)."""
    cam = np.asarray(cam, dtype=np.float32)
    finite = np.isfinite(cam)
    if not finite.any():
        return np.full_like(cam, np.nan)
    lo, hi = float(cam[finite].min()), float(cam[finite].max())
    if hi - lo < 1e-12:
        return np.where(finite, np.float32(0.0), np.float32(np.nan))
    return (cam - lo) / (hi - lo)


def cam_on_image(cam: np.ndarray, crop_box: CropBox, image_shape: tuple[int, int],
                 out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Normalised CAM resampled onto the image grid: float32 [H, W] in [0, 1], NaN where the
    model saw nothing (outside the crop box).

    ``image_shape`` is the source image's (rows, cols), the frame of ``crop_box``; ``out_shape``
    (default: ``image_shape``) lets a caller render at a smaller size directly.
    """
    h, w = image_shape
    oh, ow = out_shape or image_shape
    sy, sx = oh / h, ow / w
    x0, y0 = round(crop_box.x0 * sx), round(crop_box.y0 * sy)
    x1, y1 = min(ow, round(crop_box.x1 * sx)), min(oh, round(crop_box.y1 * sy))
    out = np.full((oh, ow), np.nan, dtype=np.float32)
    if x1 <= x0 or y1 <= y0:
        return out
    norm = normalise_cam(cam)
    size = (x1 - x0, y1 - y0)
    valid = np.isfinite(norm)
    if valid.all():
        big = _bilinear(norm, size)
    else:
        # cells no crop saw: resample values and coverage separately (normalised convolution,
        # so NaN does not bleed into the neighbours), unseen where under half covered
        cover = _bilinear(valid.astype(np.float32), size)
        filled = _bilinear(np.where(valid, norm, 0.0).astype(np.float32), size)
        with np.errstate(invalid="ignore", divide="ignore"):
            big = np.where(cover >= 0.5, filled / cover, np.nan)
    out[y0:y1, x0:x1] = np.clip(big, 0.0, 1.0)
    return out


def _bilinear(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(PILImage.fromarray(a, mode="F").resize(size, PILImage.Resampling.BILINEAR))


def colourise(heat: np.ndarray, threshold: float = 0.5, opacity: float = 0.5,
              lut: np.ndarray | None = None) -> np.ndarray:
    """RGBA uint8 [H, W, 4] of a [0, 1] heat map: transparent below ``threshold`` and where NaN,
    ``opacity`` alpha elsewhere."""
    if not 0.0 <= threshold <= 1.0 or not 0.0 <= opacity <= 1.0:
        raise ValueError("threshold and opacity must lie in [0, 1]")
    lut = jet_lut() if lut is None else lut
    valid = np.isfinite(heat)
    idx = np.clip(np.rint(np.where(valid, heat, 0.0) * (len(lut) - 1)), 0, len(lut) - 1)
    rgba = np.empty((*heat.shape, 4), dtype=np.uint8)
    rgba[..., :3] = lut[idx.astype(np.intp)]
    shown = valid & (np.where(valid, heat, -1.0) >= threshold)
    rgba[..., 3] = np.where(shown, np.uint8(round(opacity * 255)), np.uint8(0))
    return rgba


def blend(grey_u8: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """Alpha-blend an RGBA overlay onto an 8-bit greyscale image -> RGB uint8."""
    base = np.repeat(grey_u8[..., None], 3, axis=2).astype(np.float32)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    out = base * (1.0 - alpha) + rgba[..., :3].astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
