"""PNG and JPEG radiographs (the NIH release is 8-bit PNG; L, LA, RGB(A), P and 16-bit occur)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from chexnet.inference.errors import CorruptFileError, EmptyFileError, ImageTooLargeError
from chexnet.inference.io.file_guard import library_error_facts
from chexnet.inference.io.image import Image, ImageMetadata, colour_fraction, robust_window
from chexnet.inference.io.warning_guard import guarded_warnings


def read_raster(path: str | Path, kind: str, *, max_pixels: int,
                min_size: int | None = None) -> Image:
    """Read a PNG/JPEG as a greyscale :class:`Image`.

    8-bit images are taken as they are (they are already display renderings). 16-bit images get
    a robust percentile window, exactly like a DICOM without VOI.

    With ``min_size``, a JPEG is decoded by libjpeg's DCT scaling (Pillow's ``draft``) at 1/2,
    1/4 or 1/8 as long as both sides stay >= ``min_size``; ``decode_scale`` then says so. PNG has
    no reduced decode: it is always read in full.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise EmptyFileError(path, "the file is empty")
    notes: list[str] = []
    scale = 1
    try:
        with guarded_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageTooLargeError(
                        path, f"{width}x{height} pixels exceeds the pixel budget of "
                              f"{max_pixels:,}")
                n_frames = getattr(im, "n_frames", 1)
                if min_size and kind == "jpeg" and min(width, height) >= 2 * min_size:
                    drafted = im.draft(None, (min_size, min_size))
                    if drafted is not None:
                        scale = round(width / drafted[1][2])
                im.load()
                pixels, colour = _to_grey(im)
    except ImageTooLargeError:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as err:
        raise ImageTooLargeError(path, "refused by Pillow's decompression-bomb limit",
                                 "if the image is genuine, raise the limit with --max-pixels") \
            from err
    except PILImage.UnidentifiedImageError as err:
        # The signature said PNG/JPEG (sniff), so a file Pillow cannot identify is damaged.
        raise CorruptFileError(path, f"the {kind.upper()} header is damaged") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise CorruptFileError(path, f"the {kind.upper()} data is damaged "
                                     f"({library_error_facts(err)})") from err
    if colour is not None:
        notes.append("colour image: converted to greyscale")
    if n_frames > 1:
        notes.append(f"multi-frame ({n_frames} frames): only frame 1 analysed")
    windows = () if pixels.dtype == np.uint8 else (robust_window(pixels[::4, ::4]),)
    meta = ImageMetadata(source=kind, photometric="MONOCHROME2", number_of_frames=n_frames,
                         samples_per_pixel=3 if colour is not None else 1,
                         colour_fraction=colour,
                         bits_stored=8 if pixels.dtype == np.uint8 else 16)
    return Image(path=path, stored=pixels, metadata=meta, windows=windows,
                 warnings=tuple(notes), decode_scale=float(scale),
                 full_shape=(height, width) if scale != 1 else None)


def _to_grey(im: PILImage.Image) -> tuple[np.ndarray, float | None]:
    """(greyscale array, the source's coloured share when it really held colour, else None)."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im)
        if arr.dtype != np.uint16:
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        return arr, None
    if mode == "F":
        return np.asarray(im, dtype=np.float32), None
    if mode in ("L", "1"):
        return np.asarray(im.convert("L")), None
    if mode == "LA":
        return np.asarray(im.getchannel("L")), None
    rgb = np.asarray(im.convert("RGB"))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    if np.array_equal(r, g) and np.array_equal(g, b):
        return np.ascontiguousarray(r), None  # greyscale stored as RGB(A): common, harmless
    return np.asarray(im.convert("RGB").convert("L")), colour_fraction(rgb)
