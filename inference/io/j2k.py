"""JPEG 2000 frames: the one reader of their main header, and a decode at the resolution the
model needs, not the detector's.

The model sees a 224 x 224 crop, while a chest radiograph is 2-4k pixels a side. A JPEG 2000
codestream is a wavelet pyramid: its coarser resolution levels can be decoded on their own, at
a fraction of the cost (RG1, 1955 x 1841 lossless: about 0.5 s in full, a few tens of ms at 1/4).
OpenJPEG does it (``cp_reduce``); pylibjpeg-openjpeg does not expose it, Pillow does (its
``reduce`` attribute), so the reduced decode goes through Pillow, which bundles OpenJPEG.

Only the cases checked here are taken: one unsigned component of 8 to 16 bits whose codestream
size agrees with the dataset. Everything else (and any failure) returns ``None`` and the caller
decodes in full, exactly as without ``min_size``.
"""

from __future__ import annotations

import io
import logging
import math
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL import ImageFile
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless

from chexnet.inference.io.warning_guard import guarded_warnings

log = logging.getLogger(__name__)

#: The JPEG 2000 transfer syntaxes: their frames' headers are checked against the dataset and
#: they may be decoded reduced. (Part 2 multi-component, 1.2.840.10008.1.2.4.92-93, has no pydicom
#: decoder and is refused before.) HTJ2K (1.2.840.10008.1.2.4.201-203) would go the same way
#: through Pillow's OpenJPEG, but no greyscale HTJ2K file or encoder is at hand to test it, so it
#: is neither checked nor reduced for now: it is decoded in full.
J2K_SYNTAXES = frozenset({JPEG2000Lossless, JPEG2000})

_SOC_SIZ = b"\xff\x4f\xff\x51"
_COD = 0xFF52
_SOT = 0xFF90
_SOD = 0xFF93
_JP2_SIGNATURE = b"\x00\x00\x00\x0c\x6a\x50\x20\x20"  # the JP2 signature box (ISO 15444-1 I.5.1)
_JP2C = b"jp2c"  # the contiguous codestream box
#: SOC and SIZ must lie in the first bytes of a frame (pydicom's ``get_j2k_parameters`` looks in
#: the same 1024; a main header that starts later is not one a DICOM writer produces).
_SIZ_WINDOW = 1024


@dataclass(frozen=True)
class J2KHeader:
    """What the main header of a codestream says (ISO 15444-1 A.5.1 SIZ, A.6.1 COD).

    ``rows`` and ``cols`` are the image area (Ysiz - YOsiz, Xsiz - XOsiz): zero or negative in a
    malformed codestream, which then agrees with no dataset.
    """

    rows: int
    cols: int
    components: int
    precision: int  # of component 0
    signed: bool  # of component 0
    levels: int | None  # wavelet decomposition levels (reduce goes 0..levels); None: no COD read


def j2k_header(codestream: bytes) -> J2KHeader | None:
    """Parse SIZ, and COD when present, of a frame; ``None`` when no SIZ can be read.

    The frame is a raw codestream or, tolerated as pydicom tolerates it, one wrapped in JP2
    boxes. This is the one JPEG 2000 header reader: the dataset check
    (:func:`~chexnet.inference.io.pixel_checks.check_first_frame`) and the reduced decode both
    use it. Hand-written because neither pydicom's ``get_j2k_parameters`` nor
    pylibjpeg-openjpeg's ``get_parameters`` reports the number of decomposition levels, which
    bounds ``reduce``.
    """
    head = codestream[:_SIZ_WINDOW]
    start = _codestream_start(head)
    # SOC, SIZ, Lsiz, Rsiz, 8 sizes and offsets, Csiz, then Ssiz of component 0 at start + 42.
    if start is None or head[start:start + 4] != _SOC_SIZ or len(head) <= start + 42:
        return None
    pos = start + 2  # at SIZ
    lsiz = struct.unpack(">H", head[pos + 2:pos + 4])[0]
    xsiz, ysiz, x0, y0 = struct.unpack(">4I", head[pos + 6:pos + 22])
    csiz = struct.unpack(">H", head[pos + 38:pos + 40])[0]
    ssiz = head[pos + 40]
    return J2KHeader(rows=ysiz - y0, cols=xsiz - x0, components=csiz, precision=(ssiz & 0x7F) + 1,
                     signed=bool(ssiz & 0x80), levels=_decomposition_levels(codestream,
                                                                             pos + 2 + lsiz))


def _codestream_start(head: bytes) -> int | None:
    """Offset of the codestream: 0, or the content of the JP2 ``jp2c`` box; ``None`` when a box
    before it has a length under 8 (0, "to the end of the file", on which pydicom's reader loops
    forever; 1, a 64-bit length), or none is found in ``head``."""
    if not head.startswith(_JP2_SIGNATURE):
        return 0
    offset = 12
    while offset < len(head):
        if head[offset + 4:offset + 8] == _JP2C:
            return offset + 8
        length = int.from_bytes(head[offset:offset + 4], "big")
        if length < 8:
            return None
        offset += length
    return None


def _decomposition_levels(codestream: bytes, pos: int) -> int | None:
    """SPcod's number of decomposition levels from the COD segment of the main header, which
    starts at ``pos`` (after SIZ); ``None`` when no COD comes before the first tile."""
    while pos + 4 <= len(codestream) and pos < 65536:  # the marker segments of the main header
        marker, length = struct.unpack(">HH", codestream[pos:pos + 4])
        if marker in (_SOT, _SOD) or marker >> 8 != 0xFF or length < 2:
            return None
        if marker == _COD:
            # Lcod, Scod, SGcod (4 bytes), then SPcod's first byte
            return codestream[pos + 9] if pos + 10 <= len(codestream) else None
        pos += 2 + length
    return None


def reduction_for(rows: int, cols: int, levels: int, min_size: int) -> int:
    """The largest ``r <= levels`` with both sides of the 1/2^r image still >= ``min_size``."""
    r = 0
    while (r < levels and math.ceil(rows / 2 ** (r + 1)) >= min_size
           and math.ceil(cols / 2 ** (r + 1)) >= min_size):
        r += 1
    return r


def decode_j2k_reduced(codestream: bytes, min_size: int, *, rows: int, cols: int,
                       bits_stored: int) -> tuple[np.ndarray, int] | None:
    """Decode ``codestream`` at the coarsest level keeping both sides >= ``min_size``.

    Returns ``(stored values, r)``, or ``None`` when there is nothing to gain or the case is not
    one this function vouches for. The image is 1/2^r of full size, each side rounded up (ISO
    15444-1 B.5), on the pixel-area grid (see :func:`align_to_pixel_areas`).
    """
    header = j2k_header(codestream)
    if (header is None or header.levels is None or header.components != 1 or header.signed
            or not 8 <= header.precision <= 16 or header.precision != bits_stored
            or (header.rows, header.cols) != (rows, cols)):
        return None
    r = reduction_for(rows, cols, header.levels, min_size)
    if r == 0:
        return None
    try:
        arr = pillow_decode(codestream, r, header)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as err:
        log.debug("reduced JPEG 2000 decode failed (%s); decoding in full", err)
        return None
    if arr.shape != reduced_shape(rows, cols, r):
        log.debug("reduced JPEG 2000 decode gave %s; decoding in full", arr.shape)
        return None
    return align_to_pixel_areas(arr, 1 << r), r


def align_to_pixel_areas(arr: np.ndarray, scale: int) -> np.ndarray:
    """Move a wavelet low-pass band onto the grid where stored pixel i covers full pixels
    ``[i * scale, (i + 1) * scale)``.

    Sample i of resolution level r is centred on full pixel ``i * 2^r`` (the 5/3 and 9/7
    low-pass filters are centred on even samples), not on the centre of the area it stands for,
    ``i * 2^r + (2^r - 1) / 2``: a shift of ``(scale - 1) / (2 scale)`` stored pixels. Left
    alone, it shifts the model input by up to a third of a pixel (measured: 0.7-0.9 grey levels
    mean difference at 224 x 224 instead of 0.2-0.4). A bilinear shift (edge pixels repeated)
    puts it right; hand-written because it is four multiply-adds, cheaper than any resampler.
    """
    d = (scale - 1) / (2 * scale)
    p = np.pad(arr.astype(np.float32), ((0, 1), (0, 1)), mode="edge")
    out = ((1 - d) * (1 - d)) * p[:-1, :-1] + (d * (1 - d)) * (p[:-1, 1:] + p[1:, :-1]) \
        + (d * d) * p[1:, 1:]
    return np.rint(out).astype(arr.dtype)


def reduced_shape(rows: int, cols: int, r: int) -> tuple[int, int]:
    return (math.ceil(rows / 2 ** r), math.ceil(cols / 2 ** r))


def pillow_decode(codestream: bytes, r: int, header: J2KHeader) -> np.ndarray:
    """Pillow's OpenJPEG decoder at reduction ``r``, values back at ``header.precision`` bits."""
    with guarded_warnings():
        # The pixel budget was checked by the caller on the full size.
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        im = PILImage.open(io.BytesIO(codestream), formats=["JPEG2000"])
        if r:
            _set_reduced_size(im, r)
        im.load()
    arr = np.asarray(im)
    if arr.dtype == np.uint16 and header.precision < 16:
        arr = arr >> (16 - header.precision)  # Pillow widens 9-15 bit samples to 16 bits
    return np.ascontiguousarray(arr)


def _set_reduced_size(im: PILImage.Image, r: int) -> None:
    """Ask for reduction ``r`` with the size OpenJPEG will produce.

    Pillow's own ``im.reduce = r`` sizes the output by rounding (size + 2^(r-1)) / 2^r where
    OpenJPEG rounds up (ceil), so its decoder refuses ("broken data stream") every image whose
    side / 2^r has a fraction below one half -- RG1 at r = 2 among them. So the tile is set up
    here with the right size. Pillow is pinned in constraints.txt; the caller checks the shape
    and falls back to a full decode if this ever stops working.
    """
    (codec_name, _extents, offset, args), = im.tile
    rows, cols = reduced_shape(im.size[1], im.size[0], r)
    im._size = (cols, rows)  # private Pillow attributes: see the docstring
    im.tile = [ImageFile._Tile(codec_name, (0, 0, cols, rows), offset,
                               (args[0], r, args[2], args[3], args[4]))]


def is_j2k(tsyntax: str | UID) -> bool:
    """Whether pixel data in ``tsyntax`` is a JPEG 2000 codestream this module reads."""
    return str(tsyntax) in J2K_SYNTAXES
