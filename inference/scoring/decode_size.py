"""Decoding at the resolution the model needs, and turning such an image into the model's crop.

A model that sees a 224 x 224 crop of a 224-pixel resize does not need a 2,000-pixel decode.
:func:`model_min_side` is how small a reduced decode may be (``load_image(path,
min_size=model_min_side(spec))``); :func:`model_crop` is ``preprocessing.resize_and_crop``
for an image that may have been decoded reduced: it takes the crop from the full image's
geometry, so the model input matches the full-resolution path's.

Why twice the resize side: the coarser pyramid levels are low-pass filtered differently from
Pillow's antialiased resize. Measured on RG1 and 20 NIH images made JPEG 2000 with a window
(``tests/inference/test_reduced_decode.py``), the 224 x 224 model input differs from the
full-resolution path's by 0.19-0.33 grey levels on average (median 0.23) when the decode keeps
>= 2x the resize side, but by 0.51-1.39 (median 0.66) when it keeps only >= 1x.
"""

from __future__ import annotations

import numpy as np

from chexnet.inference.io.image import Image
from chexnet.inference.preprocessing import (
    CropBox,
    PreprocessSpec,
    resample,
    resize_and_crop,
    resized_shape,
    square_box,
)

#: A reduced decode keeps at least this many times the model's resize side (see above).
MIN_SIDE_FACTOR = 2


def model_min_side(spec: PreprocessSpec) -> int:
    """The ``min_size`` to pass to ``load_image`` for a model with this preprocessing."""
    return MIN_SIDE_FACTOR * spec.resize


def model_crop(image: Image, spec: PreprocessSpec) -> tuple[np.ndarray, CropBox]:
    """The 8-bit model crop (uint8 [S, S]) of ``image`` and its box in ``image``'s pixels.

    For a full-resolution image this is ``resize_and_crop(image.display_u8(), spec)``. For a
    reduced decode, the resize and crop are computed on ``image.full_shape`` (torchvision's rule
    truncates the longer side, so the reduced size would give a different crop) and the crop's
    region is resampled straight from the reduced pixels (one resampling, as in full).
    """
    display = image.display_u8()
    if not image.is_reduced or image.full_shape is None:
        return resize_and_crop(display, spec)
    full_h, full_w = image.full_shape
    if spec.crop == "centre-square":  # torchxrayvision's square, found on the full geometry
        scale = image.decode_scale
        x0, y0, x1, y1 = (v / scale for v in square_box((full_h, full_w)))
        crop = resample(display, (spec.size, spec.size), spec.interpolation, box=(x0, y0, x1, y1))
        return crop, CropBox(x0, y0, x1, y1)
    new_h, new_w = resized_shape((full_h, full_w), spec.resize)
    top = round((new_h - spec.size) / 2.0)
    left = round((new_w - spec.size) / 2.0)
    # resized pixel -> stored pixel (a stored pixel covers decode_scale full pixels)
    sx = full_w / new_w / image.decode_scale
    sy = full_h / new_h / image.decode_scale
    box = CropBox(left * sx, top * sy, (left + spec.size) * sx, (top + spec.size) * sy)
    crop = resample(display, (spec.size, spec.size), spec.interpolation,
                    box=(box.x0, box.y0, box.x1, box.y1))
    return crop, box
