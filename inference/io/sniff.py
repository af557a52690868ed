"""Recognise a file by its content, never by its suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

FileKind = Literal["dicom", "png", "jpeg"]

_PNG = b"\x89PNG\r\n\x1a\n"
_JPEG = b"\xff\xd8\xff"
# DICOM without the 128-byte preamble + "DICM" (legacy ACR-NEMA style or a bare dataset): the
# stream starts with a low group number, little endian, then either a two-letter VR (explicit)
# or a 4-byte length (implicit).
_BARE_DICOM_GROUPS = (b"\x02\x00", b"\x08\x00", b"\x10\x00", b"\x18\x00", b"\x20\x00",
                      b"\x28\x00")
#: How many leading bytes :func:`sniff_bytes` needs: the DICOM preamble and its "DICM" marker.
HEAD_BYTES = 132


def sniff(path: str | Path) -> FileKind | None:
    """Return the kind of image file at ``path``, or ``None`` when it is none chexnet reads."""
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    return sniff_bytes(head)


def has_dicom_preamble(head: bytes) -> bool:
    """Whether the file starts with the 128-byte preamble and "DICM" (else: a bare dataset)."""
    return len(head) >= HEAD_BYTES and head[128:132] == b"DICM"


def sniff_bytes(head: bytes) -> FileKind | None:
    """The kind of file whose first :data:`HEAD_BYTES` bytes are ``head``."""
    if has_dicom_preamble(head):
        return "dicom"
    if head.startswith(_PNG):
        return "png"
    if head.startswith(_JPEG):
        return "jpeg"
    if len(head) >= 8 and head[:2] in _BARE_DICOM_GROUPS:
        vr = head[4:6]
        explicit = vr.isalpha() and vr.isupper()
        implicit_length = int.from_bytes(head[4:8], "little")
        if explicit or implicit_length < 1 << 16:
            return "dicom"
    return None
