"""Byte-level surgery on explicit VR little endian DICOM files (what the fuzz seeds are).

The mutation operators edit elements in the file's bytes rather than through pydicom, so they can
write what pydicom would refuse to write: invalid VRs, lying lengths, values that break the VR.
Only top-level elements are located and edited (a sequence's own length is never rewritten).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: VRs whose explicit-VR header is tag, VR, 2 reserved bytes, 4-byte length.
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                      b"UR", b"UT", b"UV"})
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
DATASET_START = 132  # after the preamble and "DICM"


@dataclass(frozen=True)
class Element:
    """One top-level element as found in the file's bytes."""

    tag: int
    vr: bytes
    offset: int  # where its tag starts
    header_len: int  # 8 or 12
    length: int  # the length field as written (UNDEFINED for undefined)
    end: int  # where the next element starts

    @property
    def value_offset(self) -> int:
        return self.offset + self.header_len

    @property
    def length_offset(self) -> int:
        return self.offset + (8 if self.header_len == 12 else 6)


def _tag_at(data: bytes, pos: int) -> int:
    group, elem = struct.unpack_from("<HH", data, pos)
    return group << 16 | elem


def _skip_undefined(data: bytes, pos: int, depth: int = 0) -> int:
    """Past the delimiter of an undefined-length sequence, item list or encapsulated data."""
    while pos + 8 <= len(data) and depth < 64:
        tag = _tag_at(data, pos)
        length = struct.unpack_from("<I", data, pos + 4)[0]
        if tag == SEQ_END:
            return pos + 8
        if tag == ITEM and length != UNDEFINED:
            pos += 8 + length
        elif tag == ITEM:
            pos = _skip_item(data, pos + 8, depth + 1)
        else:
            raise ValueError(f"unexpected tag {tag:08X} in an undefined-length value")
    return len(data)


def _skip_item(data: bytes, pos: int, depth: int) -> int:
    while pos + 8 <= len(data):
        if _tag_at(data, pos) == ITEM_END:
            return pos + 8
        elem = element_at(data, pos, depth)
        pos = elem.end
    return len(data)


def element_at(data: bytes, pos: int, depth: int = 0) -> Element:
    tag = _tag_at(data, pos)
    vr = bytes(data[pos + 4:pos + 6])
    if vr in LONG_VRS:
        length, header_len = struct.unpack_from("<I", data, pos + 8)[0], 12
    else:
        length, header_len = struct.unpack_from("<H", data, pos + 6)[0], 8
    end = (_skip_undefined(data, pos + header_len, depth + 1) if length == UNDEFINED
           else pos + header_len + length)
    return Element(tag, vr, pos, header_len, length, end)


def elements(data: bytes, start: int = DATASET_START) -> list[Element]:
    """Top-level elements from ``start`` up to and including the pixel data element."""
    found, pos = [], start
    while pos + 8 <= len(data):
        try:
            elem = element_at(data, pos)
        except (struct.error, ValueError):  # a damaged file: the elements found so far
            break
        found.append(elem)
        if elem.tag == PIXEL_DATA or elem.end <= pos:
            break
        pos = elem.end
    return found


def find(data: bytes, tag: int) -> Element | None:
    return next((e for e in elements(data) if e.tag == tag), None)


def encode_element(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    """An explicit VR little endian element; ``length`` overrides the length field (a lie)."""
    n = len(value) if length is None else length
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr in LONG_VRS:
        return head + b"\0\0" + struct.pack("<I", n & 0xFFFFFFFF) + value
    return head + struct.pack("<H", n & 0xFFFF) + value


def pad_even(value: bytes, pad: bytes = b" ") -> bytes:
    return value + pad if len(value) % 2 else value


def set_element(data: bytes, tag: int, vr: bytes, value: bytes,
                length: int | None = None) -> bytes:
    """Replace top-level element ``tag`` (or insert it in tag order) with the given VR and value;
    the file meta group length is kept consistent when a group 2 element changes."""
    new = encode_element(tag, vr, value, length)
    found = elements(data)
    old = next((e for e in found if e.tag == tag), None)
    if old is not None:
        out = data[:old.offset] + new + data[old.end:]
    else:
        after = next((e for e in found if e.tag > tag), None)
        at = after.offset if after is not None else len(data)
        out = data[:at] + new + data[at:]
    return fix_group_length(out) if tag >> 16 == 2 else out


def fix_group_length(data: bytes) -> bytes:
    found = elements(data)
    head = next((e for e in found if e.tag == 0x00020000), None)
    if head is None:
        return data
    total = sum(e.end - e.offset for e in found if e.tag >> 16 == 2 and e.tag != 0x00020000)
    return (data[:head.value_offset] + struct.pack("<I", total)
            + data[head.value_offset + 4:])


def set_length_field(data: bytes, elem: Element, length: int) -> bytes:
    """Overwrite an element's length field only (the value bytes stay): a lying length."""
    if elem.header_len == 12:
        field = struct.pack("<I", length & 0xFFFFFFFF)
    else:
        field = struct.pack("<H", length & 0xFFFF)
    return data[:elem.length_offset] + field + data[elem.length_offset + len(field):]


def sequence(tag: int, items: list[bytes]) -> tuple[int, bytes, bytes]:
    """A defined-length sequence of items, each the bytes of its elements."""
    body = b"".join(struct.pack("<HHI", 0xFFFE, 0xE000, len(i)) + i for i in items)
    return tag, b"SQ", body
