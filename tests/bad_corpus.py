"""One folder of bad inputs for the surfaces above the loader (viewer, screener, CLI).

Each file is built from the real radiograph RG1 or from scratch with the builders of the
loader's own corpus (tests/inference/test_bad_inputs.py), which checks each one's exact error
class; here only "refused with a message naming it, nothing else harmed" matters.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG2MPML

from tests.inference.io.test_bad_inputs import (
    BASIC_TEXT_SR,
    ENCAPSULATED_PDF,
    PIXEL_TAG,
    blank_bilevel_png,
    nested_sequences,
    non_image,
    raster_bytes,
    rewrite,
    with_sequence_before_pixels,
)


def build_bad_corpus(folder: Path, rg1_uncr: Path, rg1_j2kr: Path) -> dict[str, Path]:
    """Write the corpus into ``folder``; returns name -> path. Every file must be refused."""
    folder.mkdir(parents=True, exist_ok=True)
    raw, j2k = rg1_uncr.read_bytes(), rg1_j2kr.read_bytes()
    png, jpeg = raster_bytes("PNG"), raster_bytes("JPEG")
    rng = np.random.default_rng(1)
    blobs = {
        "empty.dcm": b"",
        "notes.dcm": b"call the ward about bed 12\n",
        "noise.bin": rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "cut_header.dcm": raw[:300],
        "cut_pixels.dcm": raw[: (raw.rindex(PIXEL_TAG) + len(raw)) // 2],
        "cut_j2k.dcm": j2k[: len(j2k) - len(j2k) // 3],
        "cut.png": png[: len(png) // 2],
        "cut.jpg": jpeg[: len(jpeg) // 3],
        "png_bad_crc.png": png[:33] + bytes(4) + png[37:],
    }
    paths = {}
    for name, content in blobs.items():
        (folder / name).write_bytes(content)
        paths[name] = folder / name
    paths["report_sr.dcm"] = non_image(folder / "report_sr.dcm", BASIC_TEXT_SR, "SR",
                                       ValueType="CONTAINER")
    paths["document.dcm"] = non_image(folder / "document.dcm", ENCAPSULATED_PDF, "DOC")
    paths["nested.dcm"] = with_sequence_before_pixels(
        rg1_uncr, folder / "nested.dcm", nested_sequences(500, undefined_length=True))
    paths["no_rows.dcm"] = rewrite(rg1_uncr, folder / "no_rows.dcm",
                                   lambda ds: delattr(ds, "Rows"))
    paths["bits_stored_40.dcm"] = rewrite(rg1_uncr, folder / "bits_stored_40.dcm",
                                          lambda ds: setattr(ds, "BitsStored", 40))
    paths["mpeg2.dcm"] = rewrite(rg1_uncr, folder / "mpeg2.dcm", _encapsulate_junk)
    paths["huge.png"] = blank_bilevel_png(folder / "huge.png", 60_000, 60_000)
    paths["short_pixels.dcm"] = rewrite(rg1_uncr, folder / "short_pixels.dcm", _halve_pixels)
    head = struct.pack("<HH", 0x0008, 0x0016)
    (folder / "tag_soup.dcm").write_bytes(b"\0" * 128 + b"DICM" + head * 64)
    paths["tag_soup.dcm"] = folder / "tag_soup.dcm"
    return paths


def _encapsulate_junk(ds: pydicom.Dataset) -> None:
    """Pixel data in a transfer syntax no installed decoder handles (MPEG-2 video)."""
    ds.PixelData = encapsulate([np.random.default_rng(2).bytes(1000)])
    ds.file_meta.TransferSyntaxUID = MPEG2MPML


def _halve_pixels(ds: pydicom.Dataset) -> None:
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
