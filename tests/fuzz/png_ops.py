"""Mutation operators for PNG seeds: each ``op(data, rng) -> (bytes, params)``.

A PNG is a signature then chunks (length, type, data, CRC-32 of type + data); operators edit
chunks with or without fixing the CRC (a reader that checks CRCs refuses the first, only its
structure checks catch the second).
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass

from tests.fuzz.seeds import PHI

SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Chunk:
    kind: bytes
    offset: int  # where its length field starts
    length: int

    @property
    def data_offset(self) -> int:
        return self.offset + 8

    @property
    def end(self) -> int:
        return self.offset + 12 + self.length


def chunks(data: bytes) -> list[Chunk]:
    found, pos = [], len(SIGNATURE)
    while pos + 12 <= len(data):
        length = struct.unpack_from(">I", data, pos)[0]
        found.append(Chunk(bytes(data[pos + 4:pos + 8]), pos, length))
        pos += 12 + length
    return found


def make_chunk(kind: bytes, body: bytes, *, crc: bool = True) -> bytes:
    check = zlib.crc32(kind + body) if crc else zlib.crc32(kind + body) ^ 0xDEAD
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", check & 0xFFFFFFFF)


def _replace(data: bytes, chunk: Chunk, new: bytes) -> bytes:
    return data[:chunk.offset] + new + data[chunk.end:]


def _first(data: bytes, kind: bytes) -> Chunk | None:
    return next((c for c in chunks(data) if c.kind == kind), None)


def png_flip(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """Flip bytes anywhere after the signature (chunk headers, CRCs, data)."""
    out, flips = bytearray(data), []
    for _ in range(rng.choice([1, 2, 8])):
        pos = rng.randrange(len(SIGNATURE), len(data))
        mask = rng.randrange(1, 256)
        out[pos] ^= mask
        flips.append([pos, mask])
    return bytes(out), {"flips": flips}


def png_truncate(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    idat = _first(data, b"IDAT")
    where = rng.choice(["header", "idat", "last_bytes"])
    at = {"header": lambda: rng.randrange(1, idat.offset if idat else len(data)),
          "idat": lambda: rng.randrange(idat.offset if idat else 1, len(data)),
          "last_bytes": lambda: len(data) - rng.randint(1, 16)}[where]()
    return data[:at], {"where": where, "at": at}


IHDR_FIELDS = {
    "width": (0, ">I", [0, 1, 2, 65535, 100_000, 0x7FFFFFFF, 0xFFFFFFFF, 1024]),
    "height": (4, ">I", [0, 1, 2, 65535, 100_000, 0x7FFFFFFF, 0xFFFFFFFF, 1024]),
    "bit_depth": (8, ">B", [0, 1, 2, 3, 4, 8, 16, 32, 255]),
    "colour_type": (9, ">B", [0, 1, 2, 3, 4, 5, 6, 7, 255]),
    "compression": (10, ">B", [1, 255]),
    "filter": (11, ">B", [1, 255]),
    "interlace": (12, ">B", [1, 2, 255]),
}


def png_ihdr(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    ihdr = _first(data, b"IHDR")
    field = rng.choice(sorted(IHDR_FIELDS))
    rel, fmt, values = IHDR_FIELDS[field]
    value, fix_crc = rng.choice(values), rng.random() < 0.7
    body = bytearray(data[ihdr.data_offset:ihdr.data_offset + ihdr.length])
    packed = struct.pack(fmt, value)
    body[rel:rel + len(packed)] = packed
    out = _replace(data, ihdr, make_chunk(b"IHDR", bytes(body), crc=fix_crc))
    return out, {"field": field, "value": value, "crc_fixed": fix_crc}


def png_idat_flip(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    idats = [c for c in chunks(data) if c.kind == b"IDAT"]
    idat = rng.choice(idats)
    body = bytearray(data[idat.data_offset:idat.data_offset + idat.length])
    flips = []
    for _ in range(rng.choice([1, 4, 32])):
        pos = rng.randrange(len(body))
        body[pos] ^= rng.randrange(1, 256)
        flips.append(pos)
    fix_crc = rng.random() < 0.8
    out = _replace(data, idat, make_chunk(b"IDAT", bytes(body), crc=fix_crc))
    return out, {"idat": idats.index(idat), "flips": flips[:8], "count": len(flips),
                 "crc_fixed": fix_crc}


def png_plte(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """Remove the palette (of a palette PNG), or declare a palette image without one, or give a
    palette PNG a 1-entry palette."""
    plte = _first(data, b"PLTE")
    if plte is not None and rng.random() < 0.6:
        return data[:plte.offset] + data[plte.end:], {"action": "remove_plte"}
    if plte is not None:
        return _replace(data, plte, make_chunk(b"PLTE", b"\0\0\0")), {"action": "one_entry"}
    ihdr = _first(data, b"IHDR")
    body = bytearray(data[ihdr.data_offset:ihdr.data_offset + ihdr.length])
    body[9] = 3
    return _replace(data, ihdr, make_chunk(b"IHDR", bytes(body))), {"action": "palette_no_plte"}


def png_text_phi(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """More text chunks holding the planted PHI: as keyword, huge, malformed, compressed."""
    text = f"{PHI['PatientName']} {PHI['PatientID']} {PHI['PatientBirthDate']}".encode()
    variants = {
        "phi_keyword": make_chunk(b"tEXt", PHI["PatientName"].encode() + b"\0" + text),
        "no_separator": make_chunk(b"tEXt", text),
        "huge": make_chunk(b"tEXt", b"Comment\0" + text * 20_000),
        "bad_ztxt": make_chunk(b"zTXt", b"Patient\0\0" + text),
        "itxt": make_chunk(b"iTXt", b"Patient\0\0\0en\0" + text + b"\0" + text),
        "bad_crc": make_chunk(b"tEXt", b"Patient\0" + text, crc=False),
        "ztxt_ok": make_chunk(b"zTXt", b"Patient\0\0" + zlib.compress(text)),
    }
    label = rng.choice(sorted(variants))
    at = rng.choice(["after_ihdr", "before_iend"])
    pos = (_first(data, b"IHDR").end if at == "after_ihdr" else _first(data, b"IEND").offset)
    return data[:pos] + variants[label] + data[pos:], {"chunk": label, "at": at}


def png_chunk_length(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """A chunk whose length field lies (huge, or one byte off)."""
    found = chunks(data)
    chunk = rng.choice(found)
    length = rng.choice([0x7FFFFFFF, 0xFFFFFFFF, chunk.length + 1, max(0, chunk.length - 1), 0])
    out = data[:chunk.offset] + struct.pack(">I", length) + data[chunk.offset + 4:]
    return out, {"chunk": found.index(chunk), "kind": chunk.kind.decode("latin-1"),
                 "length": length}


PNG_OPS = {f.__name__: f for f in (png_flip, png_truncate, png_ihdr, png_idat_flip, png_plte,
                                   png_text_phi, png_chunk_length)}
