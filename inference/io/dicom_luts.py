"""DICOM pixel-value transforms read from the dataset: modality LUT / rescale, VOI LUT, windows.

Malformed values never crash a run: an unusable VOI LUT or window is ignored (logged) in favour of
the next source of a window; a rescale that cannot be applied is refused by name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi

from chexnet.inference.errors import InconsistentPixelDataError
from chexnet.inference.io.image import Window

log = logging.getLogger(__name__)


def _number(ds: Dataset, keyword: str, default: float, path: Path) -> float:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InconsistentPixelDataError(path, f"{keyword} is not a number") from None


def modality_lut(ds: Dataset, path: Path):
    if "ModalityLUTSequence" in ds:
        def lookup(arr: np.ndarray) -> np.ndarray:
            return apply_modality_lut(arr, ds)

        if not _usable(lookup):
            raise InconsistentPixelDataError(path, "the Modality LUT Sequence is malformed "
                                                   "(its descriptor or data cannot be used)")
        return lookup
    slope = _number(ds, "RescaleSlope", 1.0, path)
    intercept = _number(ds, "RescaleIntercept", 0.0, path)
    if slope == 0.0:
        raise InconsistentPixelDataError(path, "RescaleSlope is 0 (every pixel would have the "
                                               "same value)")
    if slope == 1.0 and intercept == 0.0:
        return None
    def rescale(arr: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN: the gate names them
            return np.asarray(arr, dtype=np.float64) * slope + intercept

    return rescale


def voi_lut(ds: Dataset, path: Path):
    """The file's VOI LUT as a [0, 1] function, or None (absent or unusable: then the file's
    windows or the automatic window apply, and the reason is logged)."""
    seq = ds.get("VOILUTSequence")
    if not seq:
        return None
    try:
        bits = int(seq[0].LUTDescriptor[2])
        if not 0 < bits <= 16 or "LUTData" not in seq[0]:
            raise ValueError(f"LUT bit depth {bits}")
    except (AttributeError, IndexError, TypeError, ValueError) as err:
        log.info("%s: VOI LUT Sequence unusable (%s); using the file's windows instead",
                 path.name, type(err).__name__)
        return None
    full = float((1 << bits) - 1)

    def lookup(arr: np.ndarray) -> np.ndarray:
        arr = np.asarray(arr)
        if arr.dtype.kind == "f" and np.array_equal(arr, np.rint(arr)):
            arr = arr.astype(np.int64)  # integer rescale: the LUT is indexed by integers
        return np.asarray(apply_voi(arr, ds, index=0), dtype=np.float64) / full

    if not _usable(lookup):
        log.info("%s: VOI LUT Sequence unusable; using the file's windows instead", path.name)
        return None
    return lookup


def _usable(lookup) -> bool:
    """Whether a LUT from the file maps a few values without failing (checked when the image is
    read, so a malformed LUT is named there rather than failing the first rendering)."""
    try:
        out = np.asarray(lookup(np.arange(4, dtype=np.uint16)), dtype=np.float64)
    except Exception:
        return False
    return out.shape == (4,)


def file_windows(ds: Dataset, path: Path) -> tuple[Window, ...]:
    centers, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centers is None or widths is None:
        return ()
    centers = list(centers) if isinstance(centers, pydicom.multival.MultiValue) else [centers]
    widths = list(widths) if isinstance(widths, pydicom.multival.MultiValue) else [widths]
    names = ds.get("WindowCenterWidthExplanation")
    if isinstance(names, pydicom.multival.MultiValue):
        names = [str(n) for n in names]
    else:
        names = [] if names in (None, "") else [str(names)]
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    out = []
    for i, (c, w) in enumerate(zip(centers, widths, strict=False)):
        try:
            center, width = float(c), float(w)
        except (TypeError, ValueError):
            log.info("%s: window %d is not a pair of numbers; ignored", path.name, i + 1)
            continue
        if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
            log.info("%s: window %d has width %s; ignored", path.name, i + 1, width)
            continue
        name = str(names[i]) if i < len(names) else f"file window {i + 1}"
        out.append(Window(center, width, function, name))
    return tuple(out)
