"""The one definition of "image -> model input", shared by training and inference.

Parameters come from the model card (timm's ``pretrained_cfg`` habit), never from the caller's
memory. The deterministic steps are:

1. the 8-bit display rendering of the image (:meth:`Image.display_u8`): what NIH PNGs are;
2. resize so the shorter side is ``resize`` pixels (Pillow, antialiased bilinear: the same call
   torchvision's ``Resize`` makes on PIL images), then centre-crop ``size`` x ``size``
   (``crop == "resize-centre-crop"``, the default); or, for torchxrayvision's models
   (``crop == "centre-square"``: its ``XRayCenterCrop`` then ``XRayResizer``), cut the centred
   square of the shorter side first and resize that to ``size``;
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
#: Crop geometries: torchvision's Resize + CenterCrop, or torchxrayvision's centred square of the
#: shorter side (``startx = w // 2 - side // 2``) resized to the input size.
CROP_MODES = ("resize-centre-crop", "centre-square")
#: Not a Pillow filter: ``skimage.transform.resize(order=1, anti_aliasing=True,
#: mode="constant")``, torchxrayvision's XRayResizer, reproduced in numpy (:func:`aa_linear`).
SKIMAGE_AA = "skimage-antialias"

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
    crop: str = CROP_MODES[0]

    def __post_init__(self) -> None:
        if self.resize < self.size:
            raise ValueError(f"resize ({self.resize}) must be >= crop size ({self.size})")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError("mean and std need one value per channel")
        if self.interpolation not in _INTERPOLATION and self.interpolation != SKIMAGE_AA:
            raise ValueError(f"unknown interpolation {self.interpolation!r}")
        if self.crop not in CROP_MODES:
            raise ValueError(f"unknown crop {self.crop!r}; one of {', '.join(CROP_MODES)}")
        if self.crop == "centre-square" and self.resize != self.size:
            raise ValueError("crop centre-square resizes the square straight to size: "
                             "resize must equal size")

    def to_dict(self) -> dict:
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        if d["crop"] == CROP_MODES[0]:
            del d["crop"]  # cards written before the field existed stay as they were
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        known = {k: d[k] for k in ("size", "resize", "channels", "interpolation", "crop")
                 if k in d}
        return cls(mean=tuple(d.get("mean", IMAGENET_MEAN)), std=tuple(d.get("std", IMAGENET_STD)),
                   extra={k: v for k, v in d.items() if k not in cls.__dataclass_fields__},
                   **known)


#: torchxrayvision's documented pipeline: one channel scaled to [-1024, 1024], XRayCenterCrop
#: then XRayResizer(224) (skimage's anti-aliased linear resize, :func:`aa_linear`).
XRV_PREPROCESS = PreprocessSpec(size=224, resize=224, channels=1, mean=(0.5,), std=(1 / 2048,),
                                interpolation=SKIMAGE_AA, crop="centre-square")


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


def square_box(shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """torchxrayvision's ``XRayCenterCrop``: the centred square of the shorter side, as
    (x0, y0, x1, y1) pixels."""
    h, w = shape
    side = min(h, w)
    x0, y0 = w // 2 - side // 2, h // 2 - side // 2
    return x0, y0, x0 + side, y0 + side


def resize_and_crop(display_u8: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, CropBox]:
    """Steps 2 of the module docstring on an 8-bit greyscale image -> (uint8 [S,S], crop box);
    float32 grey levels [S,S] for ``interpolation == "skimage-antialias"`` (not rounded)."""
    h, w = display_u8.shape
    if spec.crop == "centre-square":
        x0, y0, x1, y1 = square_box((h, w))
        crop = resample(display_u8[y0:y1, x0:x1], (spec.size, spec.size), spec.interpolation)
        return crop, CropBox(float(x0), float(y0), float(x1), float(y1))
    new_h, new_w = resized_shape((h, w), spec.resize)
    # torchvision.transforms.functional.center_crop's rounding, so both agree to the pixel
    top = round((new_h - spec.size) / 2.0)
    left = round((new_w - spec.size) / 2.0)
    sy, sx = h / new_h, w / new_w
    box = CropBox(left * sx, top * sy, (left + spec.size) * sx, (top + spec.size) * sy)
    pil = PILImage.fromarray(np.ascontiguousarray(display_u8))
    pil_filter = _INTERPOLATION.get(spec.interpolation)
    if pil_filter is None:  # not a Pillow filter (skimage-antialias): numpy, same geometry
        return resample(display_u8, (spec.size, spec.size), spec.interpolation,
                        box=(box.x0, box.y0, box.x1, box.y1)), box
    if new_h * new_w > MAX_RESIZED_CROPS * spec.size * spec.size:
        # A pathologically elongated image (1 x 60000 would resize to gigabytes): resample only
        # the crop's source region. Same scale and sample positions as below; float rounding
        # moves a few pixels by one grey level, so ordinary images keep the exact path.
        crop = pil.resize((spec.size, spec.size), pil_filter,
                          box=(box.x0, box.y0, box.x1, box.y1))
        return np.asarray(crop), box
    if (new_h, new_w) != (h, w):
        pil = pil.resize((new_w, new_h), pil_filter)
    return np.asarray(pil)[top:top + spec.size, left:left + spec.size], box


def resample(display_u8: np.ndarray, out_shape: tuple[int, int], interpolation: str,
             box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """``display_u8`` (or its ``box`` = x0, y0, x1, y1 region) resampled to ``out_shape`` (rows,
    cols) with the card's interpolation, the same Pillow call :func:`resize_and_crop` makes."""
    if interpolation == SKIMAGE_AA:
        if box is not None:  # whole pixels: the region torchxrayvision would have cut
            x0, y0, x1, y1 = (round(v) for v in box)
            display_u8 = display_u8[max(y0, 0):y1, max(x0, 0):x1]
        return aa_linear(display_u8, out_shape)
    pil = PILImage.fromarray(np.ascontiguousarray(display_u8))
    if box is None and out_shape == display_u8.shape:
        return np.asarray(pil)
    return np.asarray(pil.resize((out_shape[1], out_shape[0]), _INTERPOLATION[interpolation],
                                 box=box))


def normalise(crop_u8: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Step 3: uint8 [S,S] -> float32 [C,S,S] (a per-channel 256-entry table: exact and fast).
    A float crop (grey levels, from :func:`aa_linear`) is scaled arithmetically instead."""
    if crop_u8.dtype != np.uint8:
        grey = np.asarray(crop_u8, dtype=np.float64) / 255.0
        return np.stack([((grey - m) / s).astype(np.float32)
                         for m, s in zip(spec.mean, spec.std, strict=True)])
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


def _aa_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """One axis of :func:`aa_linear`: the [n_out, n_in] weights of a Gaussian pre-filter
    (sigma = (n_in/n_out - 1)/2, scipy's 4-sigma truncation) followed by linear interpolation at
    ``(i + 0.5) * n_in/n_out - 0.5`` (scipy's ``zoom(grid_mode=True)``), and per output the
    weight that fell outside the image (filled with the constant)."""
    scale = n_in / n_out
    sigma = max(0.0, (scale - 1) / 2)
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2) if sigma > 0 else np.ones(1)
    kernel /= kernel.sum()
    pos = (np.arange(n_out) + 0.5) * scale - 0.5
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    weights = np.zeros((n_out, n_in))
    outside = np.zeros(n_out)
    rows = np.arange(n_out)
    for centre, w in ((lo, 1.0 - frac), (lo + 1, frac)):
        for tap, kw in zip(taps, kernel, strict=True):
            idx = centre + tap
            ok = (idx >= 0) & (idx < n_in)
            np.add.at(weights, (rows[ok], idx[ok]), (w * kw)[ok])
            np.add.at(outside, rows[~ok], (w * kw)[~ok])
    return weights, outside


def aa_linear(display_u8: np.ndarray, out_shape: tuple[int, int],
              fill: float = 127.5) -> np.ndarray:
    """``skimage.transform.resize(img, out_shape, order=1, mode="constant", cval=0,
    anti_aliasing=True)`` as torchxrayvision calls it on images already scaled to
    [-1024, 1024], where its constant 0 is grey level ``fill`` = 127.5 here. Returns float32
    grey levels, not rounded: rounding to uint8 moved inputs by up to 4 of xrv's 2048 units,
    which moved a sensitive model's probabilities by 0.02 (measured with
    benchmarks/import_fidelity.py); :func:`normalise` scales float crops arithmetically.

    Hand-written because skimage/scipy are not dependencies of the inference runtime: the two
    separable passes are small matrices ([out, in] per axis) applied in float64.
    Measured against skimage on NIH images in tests/inference/scoring/test_resize_variants.py.
    """
    img = np.asarray(display_u8, dtype=np.float64)
    wy, oy = _aa_axis(img.shape[0], out_shape[0])
    wx, ox = _aa_axis(img.shape[1], out_shape[1])
    cols = img @ wx.T + fill * ox[None, :]
    out = wy @ cols + fill * oy[:, None]
    return np.clip(out, 0, 255).astype(np.float32)
