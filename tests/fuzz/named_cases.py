"""Hand-written cases: lying lengths with exact values (the memory tests and their regressions).

Each builder takes a seed's bytes and returns (bytes, sparse_size or None): the file is written
and, with a sparse size, extended sparsely (``os.truncate``) so that it is gigabytes on paper and
kilobytes on disk, and a loader that trusts the length reads (and holds) all of it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path

from tests.fuzz import dicom_bytes as db
from tests.fuzz.mutations import BaseFile, Case

GIB = 1 << 30
#: Just under a 1 GiB file: past a whole-file size cap, on to a per-element one.
UNDER_GIB = 1000 << 20


def pixel_length(length: int, extend: bool) -> Callable[[bytes], tuple[bytes, int | None]]:
    def build(data: bytes) -> tuple[bytes, int | None]:
        px = db.find(data, db.PIXEL_DATA)
        return db.set_length_field(data, px, length), (px.value_offset + length
                                                       if extend else None)
    return build


def name_length(vr: bytes, length: int) -> Callable[[bytes], tuple[bytes, int | None]]:
    """PatientName made a long VR whose value runs, on paper, ``length`` bytes to the end."""
    def build(data: bytes) -> tuple[bytes, int | None]:
        name = db.find(data, 0x00100010)
        value = data[name.value_offset:name.end]
        out = data[:name.offset] + db.encode_element(name.tag, vr, value, length) + \
            data[name.end:]
        return out, name.offset + 12 + length
    return build


def fragment_length(length: int) -> Callable[[bytes], tuple[bytes, int | None]]:
    """The first JPEG 2000 fragment's item length, extended to match."""
    def build(data: bytes) -> tuple[bytes, int | None]:
        px = db.find(data, db.PIXEL_DATA)
        table = struct.unpack_from("<I", data, px.value_offset + 4)[0]
        frag = px.value_offset + 8 + table
        return data[:frag + 4] + struct.pack("<I", length) + data[frag + 8:], frag + 8 + length
    return build


#: name -> (seed name, builder)
MEMORY_CASES = {
    "pixel_1gib_sparse": ("cr_chest", pixel_length(GIB, extend=True)),
    "pixel_4gib_lie": ("cr_chest", pixel_length(0xFFFFFFF0, extend=False)),
    "name_1gib_sparse_un": ("cr_chest", name_length(b"UN", GIB)),
    "name_1gib_sparse_ut": ("cr_chest_j2k", name_length(b"UT", GIB)),
    "name_1000mb_sparse_ut": ("cr_chest", name_length(b"UT", UNDER_GIB)),
    "name_1000mb_sparse_ob": ("cr_chest_j2k", name_length(b"OB", UNDER_GIB)),
    "pixel_1000mb_sparse": ("cr_chest", pixel_length(UNDER_GIB, extend=True)),
    "fragment_1000mb_sparse": ("cr_chest_j2k", fragment_length(UNDER_GIB)),
    "fragment_1gib_sparse": ("cr_chest_j2k", fragment_length(GIB)),
}


def write_named(name: str, base_files: dict[str, BaseFile], out_dir: Path) -> Case:
    seed_name, build = MEMORY_CASES[name]
    base = base_files[seed_name]
    data, sparse = build(base.path.read_bytes())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"named_{name}{base.suffix}"
    path.write_bytes(data)
    if sparse is not None and sparse > len(data):
        os.truncate(path, sparse)
    return Case(-1, 0, seed_name, name, [{"named": name}], path, sparse)
