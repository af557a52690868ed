"""Mutation operators for DICOM seeds: each ``op(data, rng) -> (bytes, params)``.

``params`` records what was done (JSON-able); a case is regenerated from (seed, index), the
params are what a reader of a finding needs. A params key ``sparse_size`` asks the case writer
to extend the file, sparsely, to that many bytes (huge on paper, tiny on disk).
"""

from __future__ import annotations

import random
import struct

from tests.fuzz import dicom_bytes as db

GIB = 1 << 30
NAME, PATIENT_ID = 0x00100010, 0x00100020
TRANSFER_SYNTAX = 0x00020010

#: Tag value edits: keyword -> (tag, VR, candidate values; ints are packed as US).
TAG_EDITS: dict[str, tuple[int, bytes, list]] = {
    "Rows": (0x00280010, b"US", [0, 1, 2, 63, 4096, 65535, (512, 512), "512\\512"]),
    "Columns": (0x00280011, b"US", [0, 1, 3, 65535, (512, 512), "512\\512"]),
    "BitsAllocated": (0x00280100, b"US", [0, 1, 7, 8, 12, 24, 32, 64, 255, 65535]),
    "BitsStored": (0x00280101, b"US", [0, 1, 8, 16, 17, 32, 33, 65535]),
    "HighBit": (0x00280102, b"US", [0, 7, 15, 16, 31, 65535]),
    "SamplesPerPixel": (0x00280002, b"US", [0, 2, 3, 4, 65535]),
    "PhotometricInterpretation": (0x00280004, b"CS", [
        "RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "MONOCHROME3", "", "\0\0",
        "MONOCHROME1\\MONOCHROME2", "monochrome2"]),
    "PixelRepresentation": (0x00280103, b"US", [1, 2, 65535]),
    "PlanarConfiguration": (0x00280006, b"US", [1, 2]),
    "NumberOfFrames": (0x00280008, b"IS", ["0", "-1", "2", "1000000", "abc", "1e9", "",
                                           "99999999999"]),
    "RescaleSlope": (0x00281053, b"DS", ["-1", "0", "NaN", "inf", "-inf", "1e308", "-1e308",
                                         "1e-308", "abc", "1\\2"]),
    "RescaleIntercept": (0x00281052, b"DS", ["-1e308", "1e308", "NaN", "inf", "abc", "-32768"]),
    "WindowCenter": (0x00281050, b"DS", ["1e308", "0", "-5", "abc", "NaN", "inf", "1\\2\\3", ""]),
    "WindowWidth": (0x00281051, b"DS", ["1e308", "0", "-5", "abc", "NaN", "inf", "1\\2\\3", ""]),
    "VOILUTFunction": (0x00281056, b"CS", ["SIGMOID", "LINEAR_EXACT", "BOGUS"]),
    "PresentationLUTShape": (0x20500020, b"CS", ["INVERSE", "BOGUS", ""]),
    "PatientAge": (0x00101010, b"AS", ["abc", "999Y", "-1Y", "\xe9\xe9Y", "0000", "12"]),
    "PixelSpacing": (0x00280030, b"DS", ["0\\0", "-1\\-1", "abc", "NaN\\NaN", "1e308\\1e308"]),
    "ImagerPixelSpacing": (0x00181164, b"DS", ["0\\0", "abc", "inf\\inf", "0.1"]),
    "ViewPosition": (0x00185101, b"CS", ["AP", "LL", "\xff\xfe", "PA\\AP", "X" * 70]),
    "BodyPartExamined": (0x00180015, b"CS", ["CHEST\\HAND", "\xe9", ""]),
    "Modality": (0x00080060, b"CS", ["MR", "CT", "", "CR\\DX", "\xff"]),
    "InstanceNumber": (0x00200013, b"IS", ["abc", "1e9", "99999999999999", "-1"]),
    "SeriesNumber": (0x00200011, b"IS", ["abc", "99999999999999", "-1"]),
    "SOPClassUID": (0x00080016, b"UI", ["1.2.840.10008.5.1.4.1.1.88.11",
                                        "1.2.840.10008.5.1.4.1.1.104.1", "abc", ""]),
    "StudyInstanceUID": (0x0020000D, b"UI", ["", "\xff\xfe", "1." * 40]),
    "SpecificCharacterSet": (0x00080005, b"CS", [
        "ISO_IR 999", "ISO 2022 IR 87", "ISO_IR 192", "GB18030", "\\ISO 2022 IR 149",
        "ISO_IR 100\\ISO_IR 192", "ISO_IR 13"]),
}
NEW_VRS = ["FD", "SQ", "UN", "OB", "ZZ", "\0\0", "US", "DS", "UL", "AT", "OW", "LO", "PN", "UI"]
TRANSFER_SYNTAXES = {
    "implicit_le": "1.2.840.10008.1.2", "explicit_le": "1.2.840.10008.1.2.1",
    "explicit_be": "1.2.840.10008.1.2.2", "deflate": "1.2.840.10008.1.2.1.99",
    "jpeg_baseline": "1.2.840.10008.1.2.4.50", "jpeg_ls": "1.2.840.10008.1.2.4.80",
    "j2k_lossless": "1.2.840.10008.1.2.4.90", "j2k": "1.2.840.10008.1.2.4.91",
    "htj2k": "1.2.840.10008.1.2.4.201", "rle": "1.2.840.10008.1.2.5",
    "unknown": "1.2.3.4.5.6.7.8", "empty": "",
    "two_values": "1.2.840.10008.1.2.1\\1.2.840.10008.1.2",
}


def _pixels(data: bytes) -> db.Element:
    elem = db.find(data, db.PIXEL_DATA)
    assert elem is not None, "seed without pixel data"
    return elem


def _flip(data: bytes, rng: random.Random, lo: int, hi: int, count: int) -> tuple[bytes, list]:
    out, done = bytearray(data), []
    for _ in range(count):
        pos = rng.randrange(lo, max(lo + 1, hi))
        mask = rng.choice([1 << rng.randrange(8), rng.randrange(1, 256)])
        out[pos] ^= mask
        done.append([pos, mask])
    return bytes(out), done


def header_flip(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """Flip bits/bytes between the preamble and the pixel data element."""
    out, flips = _flip(data, rng, db.DATASET_START, _pixels(data).value_offset,
                       rng.choice([1, 2, 4, 8]))
    return out, {"flips": flips}


def header_overwrite(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    end = _pixels(data).value_offset
    pos, n = rng.randrange(db.DATASET_START, end), rng.randint(1, 16)
    junk = bytes(rng.randrange(256) for _ in range(n))
    return data[:pos] + junk + data[pos + n:], {"offset": pos, "bytes": junk.hex()}


def pixel_flip(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    px = _pixels(data)
    out, flips = _flip(data, rng, px.value_offset, len(data), rng.choice([1, 8, 64]))
    return out, {"flips": flips[:8], "count": len(flips)}


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    px = _pixels(data)
    where = rng.choice(["header", "pixel_header", "mid_pixels", "last_bytes"])
    cut = {"header": lambda: rng.randrange(db.DATASET_START, px.offset),
           "pixel_header": lambda: rng.randrange(px.offset, px.value_offset + 16),
           "mid_pixels": lambda: rng.randrange(px.value_offset, len(data)),
           "last_bytes": lambda: len(data) - rng.randint(1, 16)}[where]()
    return data[:cut], {"where": where, "at": cut}


def vr_swap(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """Rewrite one element's VR (keeping its value bytes), often PatientName's or PatientID's."""
    found = [e for e in db.elements(data) if e.length != db.UNDEFINED and e.tag != db.PIXEL_DATA]
    named = [e for e in found if e.tag in (NAME, PATIENT_ID)]
    elem = rng.choice(named if named and rng.random() < 0.5 else found)
    vr = rng.choice(NEW_VRS).encode("latin-1")
    value = data[elem.value_offset:elem.end]
    if vr not in db.LONG_VRS and len(value) > 0xFFFF:
        vr = b"UN"
    new = db.encode_element(elem.tag, vr, value)
    return data[:elem.offset] + new + data[elem.end:], {"tag": f"{elem.tag:08X}",
                                                        "vr": vr.decode("latin-1")}


def _encode_value(vr: bytes, value) -> bytes:
    if isinstance(value, tuple):
        return b"".join(struct.pack("<H", v) for v in value)
    if isinstance(value, int):
        return struct.pack("<H", value)
    pad = b"\0" if vr == b"UI" else b" "
    return db.pad_even(value.encode("latin-1"), pad)


#: Free-text elements a person may type a name into (chexnet shows some of them).
FREE_TEXT = {"WindowCenterWidthExplanation": (0x00281055, b"LO"),
             "StudyDescription": (0x00081030, b"LO"), "SeriesDescription": (0x0008103E, b"LO"),
             "ImageComments": (0x00204000, b"LT"), "LUTExplanation": (0x00283003, b"LO")}
#: PatientName bytes that do not decode in (some) character sets.
BAD_NAME_BYTES = [b"Zyxwvuts^Planted\xff\xfe", b"Zyxwvuts^Planted\x1b$B\x30",
                  b"\xc3Zyxwvuts^Planted", "Zyxwvuts^Planted".encode("utf-16-le")]


def charset_name(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """A character set (often bogus) and a PatientName that does not decode in it: decoders
    warn, quoting the bytes."""
    charsets = TAG_EDITS["SpecificCharacterSet"][2]
    charset = rng.choice(charsets)
    name = rng.choice(BAD_NAME_BYTES)
    out = db.set_element(data, 0x00080005, b"CS", _encode_value(b"CS", charset))
    out = db.set_element(out, NAME, b"PN", db.pad_even(name))
    return out, {"charset": charset, "name_bytes": BAD_NAME_BYTES.index(name)}


def phi_free_text(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """The planted name typed into a free-text element (window explanation, descriptions)."""
    keyword = rng.choice(sorted(FREE_TEXT))
    tag, vr = FREE_TEXT[keyword]
    value = rng.choice(["Zyxwvuts^Planted", "PHI7731995 19230417", "W1 Zyxwvuts\\W2"])
    return db.set_element(data, tag, vr, _encode_value(vr, value)), {"keyword": keyword,
                                                                      "value": value}


def tag_edit(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    keyword = rng.choice(sorted(TAG_EDITS))
    tag, vr, values = TAG_EDITS[keyword]
    value = rng.choice(values)
    if isinstance(value, str) and vr == b"US":
        vr = b"IS"
    out = db.set_element(data, tag, vr, _encode_value(vr, value))
    return out, {"keyword": keyword, "value": list(value) if isinstance(value, tuple) else value}


LUT_DESCRIPTORS = [(0, 0, 16), (65535, 0, 16), (4096, 0, 40), (256, 0, 8), (2,), (4096, 65535, 0),
                   (1, 0, 16), (4096, 0, 16), (0, 65535, 1)]


def lut_sequence(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """A VOI LUT or Modality LUT sequence whose descriptor and data disagree (or are absurd)."""
    which = rng.choice(["VOILUTSequence", "ModalityLUTSequence"])
    seq_tag = 0x00283010 if which == "VOILUTSequence" else 0x00283000
    descriptor = rng.choice(LUT_DESCRIPTORS)
    desc_vr = rng.choice([b"US", b"SS"])
    n_bytes = rng.choice([0, 1, 2, 512, 8192])
    lut_data = bytes(rng.randrange(256) for _ in range(n_bytes))
    item = b""
    if rng.random() < 0.9:
        item += db.encode_element(0x00283002, desc_vr,
                                  b"".join(struct.pack("<H", v) for v in descriptor))
    if which == "ModalityLUTSequence":
        item += db.encode_element(0x00283004, b"LO", b"HU")
    item += db.encode_element(0x00283006, rng.choice([b"OW", b"US"]), lut_data)
    tag, vr, body = db.sequence(seq_tag, [item] * rng.choice([1, 2]))
    out = db.set_element(data, tag, vr, body)
    return out, {"sequence": which, "descriptor": list(descriptor),
                 "descriptor_vr": desc_vr.decode(), "lut_bytes": n_bytes}


def transfer_syntax(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    label = rng.choice(sorted(TRANSFER_SYNTAXES))
    value = db.pad_even(TRANSFER_SYNTAXES[label].encode(), b"\0")
    out = db.set_element(data, TRANSFER_SYNTAX, b"UI", value)
    return out, {"syntax": label}


def lying_length(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """An element whose length field lies: the pixel data's (up to ~4 GB, or >= 1 GB with the
    file extended sparsely to match) or PatientName's (made a long VR for a >= 1 GB lie)."""
    target = rng.choice(["pixel_data", "pixel_data_sparse", "patient_name", "name_sparse"])
    if target.startswith("pixel"):
        px = _pixels(data)
        if px.length == db.UNDEFINED:  # encapsulated: lie in the first fragment's item length
            return _fragment_lie(data, px, rng, sparse=target.endswith("sparse"))
        if target.endswith("sparse"):
            length = rng.choice([GIB, GIB + 2, 5 * GIB // 4])
            return (db.set_length_field(data, px, length),
                    {"target": target, "length": length, "sparse_size": px.value_offset + length})
        length = rng.choice([0xFFFFFFF0, 0xFFFFFFFE, 0x7FFFFFFF, px.length + 2, px.length - 2,
                             0, 1])
        return db.set_length_field(data, px, length), {"target": target, "length": length}
    name = db.find(data, NAME)
    assert name is not None
    value = data[name.value_offset:name.end]
    if target == "name_sparse":
        vr = rng.choice([b"UN", b"UT", b"OB"])
        length = rng.choice([GIB, 5 * GIB // 4])
        out = data[:name.offset] + db.encode_element(NAME, vr, value, length) + data[name.end:]
        return out, {"target": target, "vr": vr.decode(), "length": length,
                     "sparse_size": name.offset + 12 + length}
    length = rng.choice([0xFFFF, 0xFFFE, 0x8000, len(value) + 1, 0, 1])
    return db.set_length_field(data, name, length), {"target": target, "length": length}


def _fragment_lie(data: bytes, px: db.Element, rng: random.Random,
                  sparse: bool) -> tuple[bytes, dict]:
    offset_table_len = struct.unpack_from("<I", data, px.value_offset + 4)[0]
    frag = px.value_offset + 8 + offset_table_len  # the first fragment's item header
    length = rng.choice([GIB, 5 * GIB // 4] if sparse else [0xFFFFFFF0, 0x7FFFFFFF, 0, 3])
    out = data[:frag + 4] + struct.pack("<I", length) + data[frag + 8:]
    params = {"target": "fragment_length", "length": length}
    if sparse:
        params["sparse_size"] = frag + 8 + length
    return out, params


def _codestream(data: bytes) -> int:
    """Offset of the first JPEG 2000 codestream (its SOC marker) in the encapsulated data."""
    at = data.find(b"\xff\x4f\xff\x51", _pixels(data).value_offset)
    assert at > 0, "no JPEG 2000 codestream"
    return at


#: SIZ marker fields: name -> (offset from SOC, struct format, candidate values).
SIZ_FIELDS = {
    "Xsiz": (8, ">I", [0, 1, 65535, 0xFFFFFFFF, 100_000, 1024]),
    "Ysiz": (12, ">I", [0, 1, 65535, 0xFFFFFFFF, 100_000, 1024]),
    "XTsiz": (24, ">I", [0, 1, 16, 0xFFFFFFFF]),
    "Csiz": (40, ">H", [0, 2, 3, 16384]),
    "Ssiz": (42, ">B", [0x00, 0x07, 0x0F, 0x1F, 0x25, 0x8F, 0xFF]),
    "XRsiz": (43, ">B", [0, 2, 255]),
}


def j2k_siz(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """Edit the codestream's image size, tile size, component count or precision."""
    soc = _codestream(data)
    field = rng.choice(sorted(SIZ_FIELDS))
    rel, fmt, values = SIZ_FIELDS[field]
    value = rng.choice(values)
    pos = soc + 2 + rel
    packed = struct.pack(fmt, value)
    return data[:pos] + packed + data[pos + len(packed):], {"field": field, "value": value}


def j2k_cod_levels(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    """Change the number of decomposition levels in the COD marker (reduced decodes use it)."""
    cod = data.find(b"\xff\x52", _codestream(data))
    levels = rng.choice([0, 1, 32, 33, 255])
    pos = cod + 2 + 2 + 1 + 4  # marker, Lcod, Scod, SGcod
    return data[:pos] + bytes([levels]) + data[pos + 1:], {"levels": levels}


def j2k_flip(data: bytes, rng: random.Random) -> tuple[bytes, dict]:
    soc = _codestream(data)
    region = rng.choice(["main_header", "tiles"])
    lo, hi = (soc, soc + 200) if region == "main_header" else (soc + 200, len(data) - 8)
    out, flips = _flip(data, rng, lo, hi, rng.choice([1, 4, 16]))
    return out, {"region": region, "flips": flips}


DICOM_OPS = {f.__name__: f for f in (header_flip, header_overwrite, pixel_flip, truncate, vr_swap,
                                     tag_edit, lut_sequence, transfer_syntax, lying_length,
                                     charset_name, phi_free_text)}
J2K_OPS = {f.__name__: f for f in (j2k_siz, j2k_cod_levels, j2k_flip)}
