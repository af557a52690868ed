"""The heat map the canvas draws for one finding: the CAM resampled onto the image, small.

Pure arithmetic on a prediction (no Qt): the canvas stretches the result onto the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chexnet.inference.render.cam import cam_on_image
from chexnet.inference.scoring.prediction import Prediction

#: The heat map is rendered at most this many pixels on its long side and stretched onto the
#: image by the view: a 7x7 CAM holds no detail a finer grid would show, and sliders stay fast.
HEAT_SIDE = 512


@dataclass(frozen=True)
class HeatMap:
    """``values``: float32 in [0, 1], NaN where the model saw nothing, covering the whole image
    at a reduced size; ``crop``: x0, y0, x1, y1 of the region the model saw, in image pixels."""

    values: np.ndarray
    crop: tuple[float, float, float, float]


def heat_shape(image_shape: tuple[int, int], side: int = HEAT_SIDE) -> tuple[int, int]:
    """The image's shape scaled down (never up) so its long side is at most ``side``."""
    h, w = image_shape
    scale = min(1.0, side / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def heat_map(pred: Prediction | None, finding: str | None,
             image_shape: tuple[int, int]) -> HeatMap | None:
    """``finding``'s heat map on an image of ``image_shape``; None when there is nothing to
    draw (no prediction yet, the image was not analysed, or no finding is selected)."""
    if pred is None or not pred.analysed or finding is None:
        return None
    box = pred.crop_box
    values = cam_on_image(pred.cam(finding), box, image_shape, heat_shape(image_shape))
    return HeatMap(values, (box.x0, box.y0, box.x1, box.y1))
