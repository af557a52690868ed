"""The one definition of "image -> model input", shared by training and inference.

Parameters come from the model card (timm's ``pretrained_cfg`` habit), never from the caller's
memory. The deterministic steps are:

1. the 8-bit display rendering of the image (:meth:`Image.display_u8`): what NIH PNGs are;
2. resize so the shorter side is ``resize`` pixels (Pillow, antialiased bilinear: the same call
   torchvision's ``Resize`` makes on PIL images), then centre-crop ``size`` x ``size``;
3. grey -> ``channels`` copies, ``x / 255``, then ``(x - mean) / std`` per channel.

Training adds its random augmentation (horizontal flip) *after* this function and nothing else.
The crop box is returned in source-image coordinates so a viewer can outline what was scored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image as PILImage

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Test-time augmentation modes a card may name (how they crop: chexnet.inference.scoring.tta).
TTA_MODES = ("none", "five-crop", "ten-crop")
#: Above this many crop areas, the resized whole image is not built (see resize_and_crop).
MAX_RESIZED_CROPS = 16

_INTERPOLATION = {"bilinear": PILImage.Resampling.BILINEAR,
                  "bicubic": PILImage.Resampling.BICUBIC,
                  "nearest": PILImage.Resampling.NEAREST,
                  "area": PILImage.Resampling.BOX}


@dataclass(frozen=True)
class PreprocessSpec:
    """How a model wants its input. Stored in, and read from, the model card."""

    size: int = 224
    resize: int = 224
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be >= crop size ({self.size})")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError("mean and std need one value per channel")
        if self.interpolation not in _INTERPOLATION:
            raise ValueError(f"unknown interpolation {self.interpolation!r}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        known = {k: d[k] for k in ("size", "resize", "channels", "interpolation") if k in d}
        return cls(mean=tuple(d.get("mean", IMAGENET_MEAN)), std=tuple(d.get("std", IMAGENET_STD)),
                   extra={k: v for k, v in d.items() if k not in cls.__dataclass_fields__},
                   **known)


@dataclass(frozen=True)
class CropBox:
    """The region of the source image the model saw: x0, y0, x1, y1 in source pixels (floats)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def covers(self, shape: tuple[int, int], tol: float = 1.0) -> bool:
        h, w = shape
        return self.x0 <= tol and self.y0 <= tol and self.x1 >= w - tol and self.y1 >= h - tol


def resized_shape(shape: tuple[int, int], resize: int) -> tuple[int, int]:
    """(rows, cols) after torchvision's ``Resize(int)``: shorter side -> ``resize``, the longer
    side scaled and truncated (``int()``)."""
    h, w = shape
    if h <= w:
        return resize, int(resize * w / h)
    return int(resize * h / w), resize


def resize_and_crop(display_u8: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, CropBox]:
    """Steps 2 of the module docstring on an 8-bit greyscale image -> (uint8 [S,S], crop box)."""
    h, w = display_u8.shape
    new_h, new_w = resized_shape((h, w), spec.resize)
    # torchvision.transforms.functional.center_crop's rounding, so both agree to the pixel
    top = round((new_h - spec.size) / 2.0)
    left = round((new_w - spec.size) / 2.0)
    sy, sx = h / new_h, w / new_w
    box = CropBox(left * sx, top * sy, (left + spec.size) * sx, (top + spec.size) * sy)
    pil = PILImage.fromarray(np.ascontiguousarray(display_u8))
    resample = _INTERPOLATION[spec.interpolation]
    if new_h * new_w > MAX_RESIZED_CROPS * spec.size * spec.size:
        # A pathologically elongated image (1 x 60000 would resize to gigabytes): resample only
        # the crop's source region. Same scale and sample positions as below; float rounding
        # moves a few pixels by one grey level, so ordinary images keep the exact path.
        crop = pil.resize((spec.size, spec.size), resample, box=(box.x0, box.y0, box.x1, box.y1))
        return np.asarray(crop), box
    if (new_h, new_w) != (h, w):
        pil = pil.resize((new_w, new_h), resample)
    return np.asarray(pil)[top:top + spec.size, left:left + spec.size], box


def resample(display_u8: np.ndarray, out_shape: tuple[int, int], interpolation: str,
             box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """``display_u8`` (or its ``box`` = x0, y0, x1, y1 region) resampled to ``out_shape`` (rows,
    cols) with the card's interpolation, the same Pillow call :func:`resize_and_crop` makes."""
    pil = PILImage.fromarray(np.ascontiguousarray(display_u8))
    if box is None and out_shape == display_u8.shape:
        return np.asarray(pil)
    return np.asarray(pil.resize((out_shape[1], out_shape[0]), _INTERPOLATION[interpolation],
                                 box=box))


def normalise(crop_u8: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Step 3: uint8 [S,S] -> float32 [C,S,S] (a per-channel 256-entry table: exact and fast)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    luts = [((levels - m) / s).astype(np.float32) for m, s in zip(spec.mean, spec.std,
                                                                   strict=True)]
    return np.stack([np.take(lut, crop_u8) for lut in luts])


def preprocess(display_u8: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, CropBox]:
    """8-bit display image -> (model input float32 [C,S,S], crop box in source coordinates)."""
    if display_u8.ndim != 2 or display_u8.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {display_u8.dtype} {display_u8.shape}")
    crop, box = resize_and_crop(display_u8, spec)
    return normalise(crop, spec), box
