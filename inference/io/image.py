"""The loaded image: stored pixels, how to display them, the metadata that matters.

The display pipeline follows DICOM PS3.4 N.2 in this order:

1. modality LUT / rescale slope and intercept  (stored values -> modality values)
2. VOI: the file's VOI LUT or window (centre/width, with its VOI LUT function); when the file has
   none, a robust percentile window of the modality values
3. MONOCHROME1 / Presentation LUT Shape INVERSE: invert, so that bright means dense everywhere.

Stored values of integer images have at most 16 bits, so the whole pipeline is evaluated once on
the *value domain* (at most 65 536 entries) and applied to the image with one table lookup. That
is exact (every step is a pure function of the stored value) and, measured on RG1 (1841x1955,
15-bit), about 6 ms against about 40 ms for pydicom's LUT functions evaluated per pixel in float64
(``benchmarks/bench_preprocess.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chexnet.inference.io.uids import DicomUids

#: Channel difference (of 255) from which a pixel counts as coloured (:func:`colour_fraction`).
COLOUR_CHROMA = 24
#: Percentiles of the robust window used when a file carries no VOI of its own.
AUTO_WINDOW_PERCENTILES = (0.5, 99.5)


@dataclass(frozen=True)
class Window:
    """A linear VOI window (DICOM centre/width semantics) with its VOI LUT function."""

    center: float
    width: float
    function: str = "LINEAR"  # LINEAR, LINEAR_EXACT or SIGMOID (PS3.3 C.11.2.1.3)
    explanation: str = ""

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map modality values to [0, 1] (float64)."""
        c, w = float(self.center), max(float(self.width), 1e-6)
        x = np.asarray(x, dtype=np.float64)
        if self.function == "SIGMOID":
            return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        if self.function == "LINEAR_EXACT":
            return np.clip((x - (c - w / 2.0)) / w, 0.0, 1.0)
        # LINEAR: PS3.3 C.11.2.1.2.1, with the famous half-unit offsets
        if w <= 1.0:
            return (x > c - 0.5).astype(np.float64)
        return np.clip(((x - (c - 0.5)) / (w - 1.0)) + 0.5, 0.0, 1.0)


#: View Position values of a frontal (PA or AP) radiograph: ``scan()`` shows these first, and the
#: intended-use gate scores only these.
FRONTAL_VIEWS = frozenset({"PA", "AP"})
#: Modalities and body parts the intended-use gate accepts (a missing one is assumed, with a
#: warning); ``scan()`` puts studies holding such images first.
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG", "PORT CHEST", "CHEST_PA", "CHEST PA"})


@dataclass(frozen=True)
class ImageMetadata:
    """What the engine, gate and viewer need to know. Never holds patient-identifying data."""

    source: str  # "dicom", "png" or "jpeg"
    modality: str | None = None
    view_position: str | None = None
    body_part: str | None = None
    photometric: str | None = None
    patient_age_years: float | None = None
    age_unreadable: bool = False  # a Patient's Age was given but is malformed or zero
    pixel_spacing_mm: tuple[float, float] | None = None
    uids: DicomUids = field(default_factory=DicomUids)
    series_number: int | None = None
    instance_number: int | None = None
    image_laterality: str | None = None
    number_of_frames: int = 1
    samples_per_pixel: int = 1
    bits_stored: int = 8
    transfer_syntax: str | None = None
    #: Share of the file's pixels that were coloured before conversion to grey
    #: (:func:`colour_fraction`); ``None`` for a greyscale file.
    colour_fraction: float | None = None


@dataclass(frozen=True)
class Image:
    """One 2-D greyscale image ready for display and analysis.

    ``stored`` keeps the file's own values and bit depth (for window/level in the viewer);
    ``modality_lut`` maps them to modality values; ``windows`` lists the VOI windows the file
    offers (the first is the default), or one robust percentile window when it offers none;
    ``voi_lut`` is the file's explicit VOI LUT when present (it takes precedence over windows).

    ``decode_scale`` > 1 says the pixels were decoded at reduced resolution (``load_image(...,
    min_size=...)``): one stored pixel spans ``decode_scale`` pixels of the file's full image,
    whose size is ``full_shape``. Pixel spacing in ``metadata`` is that of the stored pixels.
    """

    path: Path
    stored: np.ndarray
    metadata: ImageMetadata
    modality_lut: Callable[[np.ndarray], np.ndarray] | None = None
    windows: tuple[Window, ...] = ()
    voi_lut: Callable[[np.ndarray], np.ndarray] | None = None
    invert: bool = False
    warnings: tuple[str, ...] = ()
    decode_scale: float = 1.0
    full_shape: tuple[int, int] | None = None
    _display_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.stored.shape[0]), int(self.stored.shape[1]))

    @property
    def is_reduced(self) -> bool:
        """Whether the pixels are a reduced-resolution decode of a larger image."""
        return self.decode_scale != 1.0

    @property
    def default_window(self) -> Window | None:
        return self.windows[0] if self.windows else None

    def modality_values(self) -> np.ndarray:
        """Modality values (after rescale / modality LUT) as float32, for window/level."""
        if self.modality_lut is None:
            return self.stored.astype(np.float32)
        return np.asarray(self.modality_lut(self.stored), dtype=np.float32)

    def display_u8(self, window: Window | None = None, *, cache: bool = True) -> np.ndarray:
        """The image as 8-bit display values (bright = dense), through the whole pipeline.

        With ``window=None`` the file's VOI LUT, else its first window, is used. This is the
        image the model sees (the NIH PNGs it is trained on are exactly such 8-bit renderings).
        ``cache=False`` is for interactive window/level, where every drag step is a new window
        and caching each would grow memory without bound.
        """
        key = None if window is None else (window.center, window.width, window.function)
        cached = self._display_cache.get(key)
        if cached is not None:
            return cached
        out = self._render(window)
        out.setflags(write=False)
        if cache:
            self._display_cache[key] = out
        return out

    def _render(self, window: Window | None) -> np.ndarray:
        stored = self.stored
        if stored.dtype == np.uint8 and self.modality_lut is None and self.voi_lut is None and (
            window is None and not self.windows
        ):
            return (255 - stored) if self.invert else stored.copy()
        if stored.dtype.kind in "ui" and stored.dtype.itemsize <= 2:
            # One table over every representable value (signed values through their unsigned
            # bit pattern), then a chunked lookup that allocates nothing per pixel.
            bits = stored.dtype.itemsize * 8
            index = np.ascontiguousarray(stored).view(np.uint8 if bits == 8 else np.uint16)
            domain = np.arange(1 << bits, dtype=index.dtype).view(stored.dtype).astype(np.int64)
            return _take_chunked(self._display_lut(domain, window), index)
        return self._display_lut(stored, window)

    def _display_lut(self, values: np.ndarray, window: Window | None) -> np.ndarray:
        with np.errstate(all="ignore"):  # non-finite values render black; the gate names them
            return self._render_values(values, window)

    def _render_values(self, values: np.ndarray, window: Window | None) -> np.ndarray:
        modality = values if self.modality_lut is None else self.modality_lut(values)
        if window is None and self.voi_lut is not None:
            unit = self.voi_lut(modality)
        else:
            win = window or self.default_window
            if win is None:  # Only reachable for float images without windows.
                win = robust_window(np.asarray(modality, dtype=np.float64))
            unit = win.apply(modality)
        if self.invert:
            unit = 1.0 - unit
        # NaN (a non-finite rescale, NaN float pixels) renders black; the gate refuses such images
        return np.clip(np.rint(np.nan_to_num(unit * 255.0, nan=0.0)), 0, 255).astype(np.uint8)


def _take_chunked(lut: np.ndarray, index: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``lut[index]`` in cache-sized chunks (3-4x faster than one np.take on a 4 MP image)."""
    out = np.empty(index.shape, dtype=lut.dtype)
    flat_in, flat_out = index.reshape(-1), out.reshape(-1)
    for start in range(0, flat_in.size, chunk):
        np.take(lut, flat_in[start:start + chunk], out=flat_out[start:start + chunk])
    return out


def robust_window(values: np.ndarray, percentiles: tuple[float, float] = AUTO_WINDOW_PERCENTILES,
                  explanation: str = "auto (robust percentiles)") -> Window:
    """A linear window spanning the given percentiles of ``values`` (subsampled for speed)."""
    flat = np.asarray(values).ravel()
    if flat.size > 1_000_000:
        flat = flat[:: flat.size // 1_000_000]
    if flat.dtype.kind == "f":
        flat = flat[np.isfinite(flat)]  # NaN/inf pixels: the intended-use gate names them
    if flat.size == 0:  # nothing finite to window: a placeholder the gate refuses to score
        return Window(center=0.5, width=1.0, function="LINEAR_EXACT",
                      explanation="no finite values")
    lo, hi = np.percentile(flat, percentiles)
    lo, hi = float(lo), float(hi)
    if hi <= lo:
        hi = lo + 1.0
    return Window(center=(lo + hi) / 2.0, width=hi - lo, function="LINEAR_EXACT",
                  explanation=explanation)


def colour_fraction(rgb: np.ndarray) -> float:
    """Share of the pixels of an RGB image [H, W, 3] that are visibly coloured: whose channels
    differ by at least :data:`COLOUR_CHROMA` (of 255). A radiograph stored as RGB is 0; one
    with a coloured annotation or marker a few percent; a photograph mostly coloured (the two
    photos scikit-learn ships: 47 % and 87 %). Subsampled to ~250k pixels."""
    step = max(1, int(math.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
    px = np.asarray(rgb[::step, ::step, :3])
    scale = 255.0 / float(np.iinfo(px.dtype).max) if px.dtype.kind in "ui" else 255.0
    chroma = (px.max(axis=2).astype(np.float64) - px.min(axis=2)) * scale
    return float(np.mean(chroma >= COLOUR_CHROMA)) if chroma.size else 0.0
