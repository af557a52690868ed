"""Test-time augmentation (TTA): score several crops of one image and average them.

Two modes beside ``none`` (the single centre crop of ``preprocessing.preprocess``):

- ``five-crop``: the four corner crops and the centre crop, each the model's input size ``S``,
  of the image resized so its shorter side is :func:`tta_resize` pixels. This is the second
  seed paper's "5-patch testing" (224 patches of a 256 image, after AlexNet) and torchvision's
  ``FiveCrop``.
  (For a ``centre-square`` card the crops are cut the same way, from the resized whole image.)
- ``ten-crop``: the same five plus their horizontal flips: torchvision's ``TenCrop``, which the
  best-known CheXNet reimplementation (arnoweng/CheXNet: ``Resize(256)``, ``TenCrop(224)``)
  uses at test time.

Probabilities are the mean over crops (arnoweng averages the sigmoid outputs the same way).
Each crop's CAM is mapped into the frame of the resized image (flipped crops un-flipped) and the
maps are averaged where crops overlap, each cell weighted by how many crops saw it. The merged
map covers the whole resized image, i.e. the whole source image, so its crop box is the image
and :func:`chexnet.inference.render.cam.cam_on_image` and the viewer use it unchanged.

Everything here is numpy (no torch): the engine and ``chexnet eval`` share these crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chexnet.inference.preprocessing import (
    MAX_RESIZED_CROPS,
    TTA_MODES,
    CropBox,
    PreprocessSpec,
    normalise,
    resample,
    resize_and_crop,
    resized_shape,
)

#: Resize / crop ratio when the model's own resize leaves no room for corner crops
#: (256 / 224: AlexNet's, the seed paper's and arnoweng's).
TTA_RESIZE_RATIO = 256 / 224
#: The merged CAM's cells per feature-map cell along each axis: fine enough that the centre
#: crop's half-cell offset (16 px of 256) lands on cell boundaries.
CAM_GRID_REFINE = 2


def check_tta(mode: str) -> str:
    """``mode`` if it is one of :data:`TTA_MODES`, else a ValueError naming the choices."""
    if mode not in TTA_MODES:
        raise ValueError(f"test-time augmentation must be one of {', '.join(TTA_MODES)}, "
                         f"not {mode!r}")
    return mode


def tta_resize(spec: PreprocessSpec) -> int:
    """Shorter side of the image the crops are cut from: the card's ``resize`` when it is larger
    than the input (arnoweng's 256 -> 224), else ``size`` x 256/224 (256 for a 224 input):
    with ``resize == size`` all five crops would be the same."""
    if spec.resize > spec.size:
        return spec.resize
    return round(spec.size * TTA_RESIZE_RATIO)


@dataclass(frozen=True)
class Crop:
    """One crop: top-left corner (rows, cols) in the resized frame; ``flip`` = mirrored
    left-right before scoring."""

    top: int
    left: int
    flip: bool = False


def crop_plan(frame: tuple[int, int], size: int, mode: str) -> tuple[Crop, ...]:
    """The crops of ``mode`` in a resized frame (rows, cols): torchvision's ``five_crop``
    positions (top-left, top-right, bottom-left, bottom-right, centre, with ``center_crop``'s
    rounding), then, for ``ten-crop``, the same positions flipped."""
    h, w = frame
    if h < size or w < size:
        raise ValueError(f"frame {frame} is smaller than the {size} px crop")
    centre = Crop(round((h - size) / 2.0), round((w - size) / 2.0))
    if check_tta(mode) == "none":
        return (centre,)
    five = (Crop(0, 0), Crop(0, w - size), Crop(h - size, 0), Crop(h - size, w - size), centre)
    if mode == "five-crop":
        return five
    return five + tuple(Crop(c.top, c.left, True) for c in five)


@dataclass(frozen=True)
class TtaCrops:
    """One image's crops as 8-bit pixels (flipped ones already mirrored), and where they came
    from. A twelfth of the size of the normalised input (uint8 grey vs float32 x channels):
    the screener's decode workers send this form across the process boundary."""

    pixels: np.ndarray  # [K, S, S] uint8, one crop per row
    crops: tuple[Crop, ...]
    frame: tuple[int, int]  # the resized image (rows, cols) the crops are cut from
    box: CropBox  # the source region the frame covers: the whole image


def tta_crops(display_u8: np.ndarray, spec: PreprocessSpec, mode: str) -> TtaCrops:
    """8-bit display image -> the ``mode`` crops, 8-bit (``none``: the single centre crop of
    the card's own resize, i.e. :func:`~chexnet.inference.preprocessing.resize_and_crop`'s)."""
    if display_u8.ndim != 2 or display_u8.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 image, got {display_u8.dtype} {display_u8.shape}")
    h, w = display_u8.shape
    if mode == "none" and spec.crop != "resize-centre-crop":  # e.g. torchxrayvision's square
        crop, box = resize_and_crop(display_u8, spec)
        return TtaCrops(crop[None], (Crop(0, 0),), (spec.size, spec.size), box)
    frame = resized_shape((h, w), spec.resize if mode == "none" else tta_resize(spec))
    crops = crop_plan(frame, spec.size, mode)
    sy, sx = h / frame[0], w / frame[1]
    s = spec.size
    if frame[0] * frame[1] > MAX_RESIZED_CROPS * s * s:
        # the same guard as resize_and_crop: resample only each crop's source region
        pixels = [resample(display_u8, (s, s), spec.interpolation,
                           box=(c.left * sx, c.top * sy, (c.left + s) * sx, (c.top + s) * sy))
                  for c in crops]
    else:
        whole = resample(display_u8, frame, spec.interpolation)
        pixels = [whole[c.top:c.top + s, c.left:c.left + s] for c in crops]
    stacked = np.stack([p[:, ::-1] if c.flip else p for p, c in zip(pixels, crops, strict=True)])
    return TtaCrops(stacked, crops, frame, CropBox(0.0, 0.0, float(w), float(h)))


def normalise_crops(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """8-bit crops [K, S, S] -> the model input [K, C, S, S] float32, each crop normalised by
    ``preprocessing.normalise`` (a lookup table per pixel: the same values whether a crop is
    normalised here, in a worker or one by one)."""
    return np.stack([normalise(p, spec) for p in pixels])


def merge_probs(probs: np.ndarray) -> np.ndarray:
    """Per-crop probabilities [K, C] -> their mean [C]."""
    return np.asarray(probs, dtype=np.float64).mean(axis=0).astype(np.float32)


def cam_grid_shape(frame: tuple[int, int], size: int, cam_shape: tuple[int, int]
                   ) -> tuple[int, int]:
    """Cells of the merged CAM over the frame: :data:`CAM_GRID_REFINE` x the feature map's
    density (16 x 16 for a 256 frame, 224 input, 7 x 7 CAMs)."""
    return tuple(max(1, round(n * CAM_GRID_REFINE * m / size))
                 for n, m in zip(frame, cam_shape, strict=True))


def _interp_matrix(centres: np.ndarray, start: int, size: int, n_cam: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Rows: linear-interpolation weights of the ``n_cam`` CAM cells at each frame coordinate
    ``centres`` for a crop starting at ``start`` (cell-centre aligned, clamped at the edges:
    what Pillow's bilinear upsampling does); ``covered``: the coordinates inside the crop."""
    local = centres - start
    covered = (local >= 0) & (local < size)
    pos = np.clip(local * n_cam / size - 0.5, 0.0, n_cam - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n_cam - 1)
    frac = pos - lo
    m = np.zeros((len(centres), n_cam))
    rows = np.arange(len(centres))
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    m[~covered] = 0.0
    return m, covered


def merge_cams(cams: np.ndarray, crops: tuple[Crop, ...], frame: tuple[int, int], size: int
               ) -> tuple[np.ndarray, float]:
    """Per-crop CAMs [K, C, h, w] -> (one CAM per label over the whole frame [C, gh, gw],
    share of the frame's cells at least one crop saw).

    Each crop's CAM is un-flipped if its crop was flipped, interpolated at the centres of the
    merged grid's cells inside the crop, and the crops are averaged cell by cell over those that
    cover it. Cells no crop covers (only an image over 2.6:1 leaves any) are NaN, which
    :func:`~.cam.cam_on_image` shows as unseen.
    """
    cams = np.asarray(cams, dtype=np.float64)
    k, _c, h, w = cams.shape
    if k != len(crops):
        raise ValueError(f"{k} CAMs for {len(crops)} crops")
    gh, gw = cam_grid_shape(frame, size, (h, w))
    ys = (np.arange(gh) + 0.5) * frame[0] / gh
    xs = (np.arange(gw) + 0.5) * frame[1] / gw
    total = np.zeros((cams.shape[1], gh, gw))
    count = np.zeros((gh, gw))
    for cam, crop in zip(cams, crops, strict=True):
        ay, my = _interp_matrix(ys, crop.top, size, h)
        ax, mx = _interp_matrix(xs, crop.left, size, w)
        total += np.einsum("ih,chw,jw->cij", ay, cam[:, :, ::-1] if crop.flip else cam, ax)
        count += np.outer(my, mx)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return merged.astype(np.float32), float(np.mean(count > 0))
