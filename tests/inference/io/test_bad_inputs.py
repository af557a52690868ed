"""The bad-input corpus at loader level: every damaged, hostile or unsupported file is refused
with a named :class:`ChexnetInputError` whose message is one line naming the file.

Every bad file is generated here, into ``tmp_path``, mostly from the real radiograph RG1 in
pydicom-data (nothing is copied into the repository).
"""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.filereader import read_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import (
    MPEG2MPML,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    generate_uid,
)

from chexnet.inference import check_intended_use, load_image, scan
from chexnet.inference.errors import (
    ChexnetInputError,
    CorruptFileError,
    DecoderUnavailableError,
    EmptyFileError,
    ImageTooLargeError,
    InconsistentPixelDataError,
    MissingAttributeError,
    NotAnImageError,
    UnrecognisedFileError,
    UnsupportedImageError,
)
from chexnet.inference.io.dicom_reader import read_dicom
from tests.conftest import pydicom_data_file
from tests.inference.io.dicom_factory import new_dataset

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
GRAYSCALE_PRESENTATION_STATE = "1.2.840.10008.5.1.4.1.1.11.1"
JPEG_XL = "1.2.840.10008.1.2.4.110"  # newer than pydicom 3.0: it knows no such transfer syntax
PIXEL_TAG = b"\xe0\x7f\x10\x00"


# --- helpers -------------------------------------------------------------------------------------

def assert_clean_message(err: BaseException, path: Path) -> None:
    """The message a CLI prints as is: one line, names the file, no traceback text."""
    assert isinstance(err, ChexnetInputError)
    text = str(err)
    assert len(text.splitlines()) == 1, text
    assert path.name in text, text
    assert "Traceback" not in text, text
    assert 'File "' not in text, text
    assert err.path == path


def expect_error(path: Path, cls: type[ChexnetInputError], loader=load_image,
                 **kwargs) -> ChexnetInputError:
    """``loader(path)`` raises exactly ``cls`` (not a subclass of it), with a clean message."""
    with pytest.raises(cls) as info:
        loader(path, **kwargs)
    assert type(info.value) is cls, f"{type(info.value).__name__}: {info.value}"
    assert_clean_message(info.value, path)
    return info.value


def rewrite(src: Path, dst: Path, change=None, **save_kwargs) -> Path:
    """Read ``src``, let ``change(ds)`` alter it, save it as ``dst``."""
    ds = pydicom.dcmread(src)
    if change is not None:
        change(ds)
    ds.save_as(dst, **save_kwargs)
    return dst


def cut(src: Path, dst: Path, length: int) -> Path:
    dst.write_bytes(src.read_bytes()[:length])
    return dst


def non_image(path: Path, sop_class: str, modality: str, **attrs) -> Path:
    """A valid DICOM object of an image-less SOP class."""
    ds = new_dataset(sop_class, modality)
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def sr_text_item() -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "TEXT"
    item.ConceptNameCodeSequence = Sequence([code_item("121071", "Finding")])
    item.TextValue = "No acute cardiopulmonary abnormality."
    return item


def nested_sequences(depth: int, *, undefined_length: bool) -> bytes:
    """An Acquisition Context Sequence (0040,0555) nested ``depth`` levels, explicit VR LE.

    Built by hand: pydicom's writer itself takes minutes on a few hundred levels.
    """
    if undefined_length:
        open_ = (struct.pack("<HH2sHI", 0x0040, 0x0555, b"SQ", 0, 0xFFFFFFFF)
                 + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF))
        close = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        return open_ * depth + close * depth
    body = b""
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
        body = struct.pack("<HH2sHI", 0x0040, 0x0555, b"SQ", 0, len(item)) + item
    return body


def with_sequence_before_pixels(src: Path, dst: Path, sequence: bytes) -> Path:
    """RG1 with ``sequence`` spliced in just before its Pixel Data element (tag order kept)."""
    raw = src.read_bytes()
    pixels = raw.rindex(PIXEL_TAG)
    dst.write_bytes(raw[:pixels] + sequence + raw[pixels:])
    return dst


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_bilevel_png(path: Path, width: int, height: int) -> Path:
    """A valid 1-bit all-black PNG, streamed: tens of kB on disk whatever its pixel count."""
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    deflater = zlib.compressobj(9)
    rows_per_block = max(1, (1 << 20) // len(row))
    idat = bytearray()
    for start in range(0, height, rows_per_block):
        idat += deflater.compress(row * min(rows_per_block, height - start))
    idat += deflater.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
                     + png_chunk(b"IDAT", bytes(idat)) + png_chunk(b"IEND", b""))
    return path


def raster_bytes(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    # a ramp with some texture: an image the pixel checks accept (not noise, not blank), whose
    # compressed size is not tiny
    ramp = np.linspace(30, 220, 256)[None, :] + rng.normal(0, 6, (256, 256))
    grey = np.clip(ramp, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(grey).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def rg1_image(rg1_uncr: Path):
    """RG1 as the reader loads it: the reference for files that must still load."""
    return load_image(rg1_uncr)


# --- 1. empty ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["empty.dcm", "empty.png", "IM0001"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    expect_error(path, EmptyFileError)


# --- 2. truncated DICOM --------------------------------------------------------------------------

def test_truncated_in_the_pixel_data(tmp_path, rg1_uncr):
    raw = rg1_uncr.read_bytes()
    path = cut(rg1_uncr, tmp_path / "cut_pixels.dcm", (raw.rindex(PIXEL_TAG) + len(raw)) // 2)
    err = expect_error(path, CorruptFileError)
    assert "truncated" in str(err)


def _header_cut(rg1: Path, where: str) -> int:
    raw = rg1.read_bytes()
    name = pydicom.dcmread(rg1, stop_before_pixels=True).get_item("PatientName")
    pixels = raw.rindex(PIXEL_TAG)
    return {
        "in_file_meta": 132 + 40,
        "in_an_element_value": name.value_tell + name.length // 2,
        "in_an_element_header": name.value_tell - 5,
        "before_the_pixel_data": pixels,
        "in_the_pixel_data_header": pixels + 10,
    }[where]


@pytest.mark.parametrize("where", ["in_file_meta", "in_an_element_value", "in_an_element_header",
                                   "before_the_pixel_data", "in_the_pixel_data_header"])
def test_truncated_in_the_header(tmp_path, rg1_uncr, where):
    path = cut(rg1_uncr, tmp_path / f"cut_{where}.dcm", _header_cut(rg1_uncr, where))
    expect_error(path, CorruptFileError)


# --- 3. no DICM preamble -------------------------------------------------------------------------

@pytest.mark.parametrize("implicit_vr", [True, False], ids=["implicit", "explicit"])
def test_bare_dataset_without_preamble_loads(tmp_path, rg1_uncr, rg1_image, implicit_vr):
    def bare(ds):
        ds.preamble = None
        ds.file_meta = FileMetaDataset()

    path = rewrite(rg1_uncr, tmp_path / "legacy.dcm", bare, enforce_file_format=False,
                   implicit_vr=implicit_vr, little_endian=True)
    raw = path.read_bytes()
    assert raw[128:132] != b"DICM"  # really a bare dataset, no preamble, no file meta
    assert raw[:2] == b"\x08\x00"
    image = load_image(path)
    np.testing.assert_array_equal(image.stored, rg1_image.stored)


def test_random_bytes_without_preamble(tmp_path):
    path = tmp_path / "noise.dcm"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    expect_error(path, UnrecognisedFileError)


@pytest.mark.parametrize("seed", range(12))
def test_noise_that_starts_like_a_bare_dataset(tmp_path, seed):
    """Group 0008 then noise: sniffed as DICOM, so pydicom parses garbage. Any named error."""
    path = tmp_path / f"fake_{seed}.dcm"
    path.write_bytes(b"\x08\x00\x05\x00CS" + np.random.default_rng(seed).bytes(2048))
    with pytest.raises(ChexnetInputError) as info:
        load_image(path)
    assert_clean_message(info.value, path)


# --- 4. no transfer syntax in the file meta ------------------------------------------------------

def _drop_transfer_syntax(ds):
    del ds.file_meta.TransferSyntaxUID


def test_no_transfer_syntax_native_pixels_load(tmp_path, rg1_uncr, rg1_image):
    path = rewrite(rg1_uncr, tmp_path / "no_ts.dcm", _drop_transfer_syntax,
                   enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert "TransferSyntaxUID" not in read_file_meta_info(path)
    np.testing.assert_array_equal(load_image(path).stored, rg1_image.stored)


def test_no_transfer_syntax_encapsulated_pixels(tmp_path, rg1_j2kr):
    path = rewrite(rg1_j2kr, tmp_path / "no_ts_j2k.dcm", _drop_transfer_syntax,
                   enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert "TransferSyntaxUID" not in read_file_meta_info(path)
    err = expect_error(path, MissingAttributeError)
    assert "Transfer Syntax" in str(err)


# --- 5. objects without pixel data ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["basic_text_sr", "encapsulated_pdf", "presentation_state"])
def test_non_image_objects(tmp_path, kind):
    path = tmp_path / f"{kind}.dcm"
    if kind == "basic_text_sr":
        non_image(path, BASIC_TEXT_SR, "SR", ValueType="CONTAINER",
                  ConceptNameCodeSequence=Sequence([code_item("18748-4", "Imaging report")]),
                  ContentSequence=Sequence([sr_text_item()]))
        name = "Basic Text SR"
    elif kind == "encapsulated_pdf":
        non_image(path, ENCAPSULATED_PDF, "DOC", MIMETypeOfEncapsulatedDocument="application/pdf",
                  EncapsulatedDocument=b"%PDF-1.4\n1 0 obj\n<< >>\nendobj\n%%EOF\n")
        name = "Encapsulated PDF"
    else:
        non_image(path, GRAYSCALE_PRESENTATION_STATE, "PR", PresentationLUTShape="IDENTITY",
                  ContentLabel="PR")
        name = "Grayscale Softcopy Presentation State"
    err = expect_error(path, NotAnImageError)
    assert name in str(err)


# --- 6. missing pixel description ----------------------------------------------------------------

@pytest.mark.parametrize("keyword", ["Rows", "Columns", "BitsAllocated", "BitsStored"])
def test_missing_pixel_attribute(tmp_path, rg1_uncr, keyword):
    path = rewrite(rg1_uncr, tmp_path / f"no_{keyword}.dcm", lambda ds: delattr(ds, keyword))
    err = expect_error(path, MissingAttributeError)
    assert keyword in str(err)


# --- 7. inconsistent bit depths ------------------------------------------------------------------

@pytest.mark.parametrize(("stored", "high"), [(15, 11), (17, 16)],
                         ids=["high_bit_not_stored_minus_1", "stored_over_allocated"])
def test_inconsistent_bit_depths(tmp_path, rg1_uncr, stored, high):
    def change(ds):
        ds.BitsStored, ds.HighBit = stored, high

    path = rewrite(rg1_uncr, tmp_path / "bits.dcm", change)
    err = expect_error(path, InconsistentPixelDataError)
    assert "bit depths" in str(err)


# --- 8. native pixel data too short --------------------------------------------------------------

def test_native_pixel_data_too_short(tmp_path, rg1_uncr):
    path = rewrite(rg1_uncr, tmp_path / "short.dcm",
                   lambda ds: setattr(ds, "PixelData", ds.PixelData[:100_000]))
    err = expect_error(path, InconsistentPixelDataError)
    assert "pixel data too short" in str(err)


# --- 9. no decoder for the transfer syntax -------------------------------------------------------

@pytest.mark.parametrize("syntax", [MPEG2MPML, JPEG_XL], ids=["mpeg2", "jpeg_xl"])
def test_no_decoder_for_the_transfer_syntax(tmp_path, rg1_uncr, syntax):
    def encapsulate_junk(ds):
        ds.PixelData = encapsulate([np.random.default_rng(2).bytes(1000)])
        ds.file_meta.TransferSyntaxUID = MPEG2MPML

    path = rewrite(rg1_uncr, tmp_path / "undecodable.dcm", encapsulate_junk)
    if syntax != MPEG2MPML:  # pydicom refuses to write a UID it does not know: patch the bytes
        raw = path.read_bytes()
        old, new = f"{MPEG2MPML}\0".encode(), f"{syntax}\0".encode()
        assert len(old) == len(new)
        assert raw.count(old) == 1
        path.write_bytes(raw.replace(old, new))
    err = expect_error(path, DecoderUnavailableError)
    # by UID, or by name where pydicom knows one (highdicom/pynetdicom, once imported, teach
    # pydicom newer transfer syntaxes such as JPEG XL)
    assert syntax in str(err) or UID(syntax).name in str(err)


# --- 10. JPEG 2000 codestream disagrees with the dataset -----------------------------------------

@pytest.mark.parametrize("change", ["bits_8", "rows", "rows_columns_swapped"])
def test_jpeg2000_header_disagrees_with_dataset(tmp_path, rg1_j2kr, change):
    def edit(ds):
        if change == "bits_8":
            ds.BitsStored, ds.HighBit = 8, 7
        elif change == "rows":
            ds.Rows = 1000
        else:  # same pixel count: pydicom would reshape the codestream silently
            ds.Rows, ds.Columns = ds.Columns, ds.Rows

    path = rewrite(rg1_j2kr, tmp_path / f"j2k_{change}.dcm", edit)
    err = expect_error(path, InconsistentPixelDataError)
    assert "JPEG 2000 header" in str(err)


def test_jpeg2000_frame_whose_jp2_boxes_cannot_be_walked(tmp_path, rg1_j2kr):
    """A JP2 box of length 0 before the codestream: refused, not looped on."""
    def edit(ds):
        frame = get_frame(ds.PixelData, 0, number_of_frames=1)
        wrapped = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x00ftyp" + frame
        ds.PixelData = encapsulate([wrapped + b"\x00" * (len(wrapped) % 2)])

    path = rewrite(rg1_j2kr, tmp_path / "j2k_box.dcm", edit)
    err = expect_error(path, CorruptFileError)
    assert "JPEG 2000 codestream has no readable header" in str(err)


# --- 11. palette colour --------------------------------------------------------------------------

def test_palette_colour_from_pydicom_data():
    path = pydicom_data_file("OT-PAL-8-face.dcm")
    expect_error(path, UnsupportedImageError)


def test_palette_colour_photometric(tmp_path, rg1_uncr):
    path = rewrite(rg1_uncr, tmp_path / "palette.dcm",
                   lambda ds: setattr(ds, "PhotometricInterpretation", "PALETTE COLOR"))
    err = expect_error(path, UnsupportedImageError)
    assert "palette" in str(err)


# --- 12. multi-frame -----------------------------------------------------------------------------

def test_multi_frame_loads_first_frame_with_a_warning(tmp_path, rg1_uncr, rg1_image):
    def two_frames(ds):
        ds.NumberOfFrames = 2
        ds.PixelData = ds.PixelData + bytes(len(ds.PixelData))  # frame 2 is black

    image = load_image(rewrite(rg1_uncr, tmp_path / "two_frames.dcm", two_frames))
    np.testing.assert_array_equal(image.stored, rg1_image.stored)
    assert any("multi-frame" in w for w in image.warnings)
    assert check_intended_use(image).status == "analysed_with_warnings"


# --- 13. pixel budget, checked before decoding ---------------------------------------------------

def test_huge_dimensions_refused_before_decoding(tmp_path, rg1_uncr):
    def huge(ds):
        ds.Rows = ds.Columns = 60000
        ds.PixelData = bytes(16)

    path = rewrite(rg1_uncr, tmp_path / "huge.dcm", huge)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        err = expect_error(path, ImageTooLargeError)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 2.0
    assert peak < 32 << 20  # 60000 x 60000 x 16 bits would be 7.2 GB
    assert "60000x60000" in str(err)


def test_max_pixels_on_a_real_radiograph(rg1_uncr):
    err = expect_error(rg1_uncr, ImageTooLargeError, max_pixels=1000)
    assert "1,000" in str(err)


# --- 14. deflated transfer syntax ----------------------------------------------------------------

def _deflate_bomb(path: Path, inflated_mib: int) -> Path:
    """A deflated DICOM whose body inflates to ``inflated_mib`` MiB: a tiny image followed by a
    private OB element of zeros. The body is deflated by hand, in chunks, so nothing big is ever
    held in memory here."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
    ds.Modality = "OT"
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(64)
    plain = io.BytesIO()
    ds.save_as(plain, enforce_file_format=True)
    raw = plain.getvalue()
    body_start = 132 + 12 + int.from_bytes(raw[140:144], "little")
    creator = b"CHEXNET TEST"
    body = (raw[body_start:]
            + struct.pack("<HH2sH", 0x7FE1, 0x0010, b"LO", len(creator)) + creator
            + struct.pack("<HH2sHI", 0x7FE1, 0x1000, b"OB", 0, inflated_mib << 20))
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = bytearray(deflater.compress(body))
    zeros = bytes(1 << 20)
    for _ in range(inflated_mib):
        stream += deflater.compress(zeros)
    stream += deflater.flush()
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    header = io.BytesIO()
    ds.save_as(header, enforce_file_format=True)
    head = header.getvalue()
    meta_end = 132 + 12 + int.from_bytes(head[140:144], "little")
    path.write_bytes(head[:meta_end] + bytes(stream))
    return path


def test_deflate_bomb_refused_before_inflating(tmp_path):
    path = _deflate_bomb(tmp_path / "bomb.dcm", inflated_mib=64)
    assert path.stat().st_size < 1 << 20
    assert read_file_meta_info(path).TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    tracemalloc.start()
    try:
        err = expect_error(path, ImageTooLargeError, loader=read_dicom,
                           max_inflated_bytes=1 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # the 64 MiB body was never inflated as a whole
    assert "inflates past" in str(err)


def test_deflate_bomb_within_cap_reads(tmp_path):
    """The same construction under the cap is a readable image: the cap, not the file, refused."""
    path = _deflate_bomb(tmp_path / "small.dcm", inflated_mib=2)
    image = read_dicom(path, max_inflated_bytes=4 << 20)
    assert image.shape == (8, 8)


def test_deflated_radiograph_loads(tmp_path, rg1_uncr, rg1_image):
    path = rewrite(rg1_uncr, tmp_path / "deflated.dcm", lambda ds: setattr(
        ds.file_meta, "TransferSyntaxUID", DeflatedExplicitVRLittleEndian))
    assert path.stat().st_size < rg1_uncr.stat().st_size
    np.testing.assert_array_equal(load_image(path).stored, rg1_image.stored)


def test_deflated_stream_truncated(tmp_path, rg1_uncr):
    deflated = rewrite(rg1_uncr, tmp_path / "deflated.dcm", lambda ds: setattr(
        ds.file_meta, "TransferSyntaxUID", DeflatedExplicitVRLittleEndian))
    path = cut(deflated, tmp_path / "deflated_cut.dcm", deflated.stat().st_size // 2)
    expect_error(path, CorruptFileError)


# --- 15. hostile nesting -------------------------------------------------------------------------

@pytest.mark.parametrize("undefined_length", [True, False], ids=["undefined", "defined"])
def test_sequences_nested_hundreds_deep(tmp_path, rg1_uncr, undefined_length):
    path = with_sequence_before_pixels(
        rg1_uncr, tmp_path / "nested.dcm", nested_sequences(500, undefined_length=undefined_length))
    err = expect_error(path, CorruptFileError)
    assert "nested" in str(err)


@pytest.mark.parametrize("undefined_length", [True, False], ids=["undefined", "defined"])
def test_sequences_nested_a_few_levels_load(tmp_path, rg1_uncr, undefined_length):
    """The splice itself is harmless: real files nest a few levels."""
    path = with_sequence_before_pixels(
        rg1_uncr, tmp_path / "nested3.dcm", nested_sequences(3, undefined_length=undefined_length))
    assert load_image(path).shape == (1955, 1841)


# --- 16. end of file before a delimiter ----------------------------------------------------------

def test_encapsulated_pixel_data_cut_before_its_delimiter(tmp_path, rg1_j2kr):
    """pydicom only warns ("End of file reached before delimiter"); the reader refuses."""
    path = cut(rg1_j2kr, tmp_path / "j2k_cut.dcm", rg1_j2kr.stat().st_size // 2)
    err = expect_error(path, CorruptFileError)
    assert "delimiter" in str(err)


def test_undefined_length_sequence_cut_before_its_delimiter(tmp_path, rg1_uncr):
    raw = rg1_uncr.read_bytes()
    sequence = nested_sequences(2, undefined_length=True)[:-8]  # no sequence delimiter
    path = tmp_path / "sq_cut.dcm"
    path.write_bytes(raw[:raw.rindex(PIXEL_TAG)] + sequence)
    expect_error(path, CorruptFileError)


# --- 17. not an image, whatever the suffix -------------------------------------------------------

def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("IM0001.dcm", b"not really")
    return buf.getvalue()


@pytest.mark.parametrize(("name", "content"), [
    ("report.dcm", b"Chest PA: no acute findings.\nSigned: Dr X\n"),
    ("scan.dcm", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"),
    ("study.dcm", _zip_bytes()),
], ids=["text", "pdf", "zip"])
def test_non_image_file_with_dcm_suffix(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    expect_error(path, UnrecognisedFileError)


# --- 18. PNG / JPEG ------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("keep", ["half", "header_only"])
def test_truncated_raster(tmp_path, fmt, keep):
    data = raster_bytes(fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    header_only = {"PNG": 40, "JPEG": 20}[fmt]  # signature and part of the first header
    path.write_bytes(data[: len(data) // 2 if keep == "half" else header_only])
    expect_error(path, CorruptFileError)


def test_png_over_pillows_decompression_bomb_limit(tmp_path):
    path = blank_bilevel_png(tmp_path / "bomb.png", 20000, 20000)
    assert path.stat().st_size < 1 << 20
    # Pillow's own guard (the pixel budget raised out of the way) and the default budget.
    err = expect_error(path, ImageTooLargeError, max_pixels=10**12)
    assert "decompression" in str(err)
    expect_error(path, ImageTooLargeError)


def test_png_over_the_pixel_budget(tmp_path):
    path = blank_bilevel_png(tmp_path / "large.png", 9000, 9000)  # under Pillow's limit
    err = expect_error(path, ImageTooLargeError)
    assert "9000x9000" in str(err)
    good = tmp_path / "good.png"
    good.write_bytes(raster_bytes("PNG"))
    expect_error(good, ImageTooLargeError, max_pixels=1000)


# --- 19. hostile strings -------------------------------------------------------------------------

def test_hostile_patient_name_loads_and_is_not_kept(tmp_path, rg1_uncr, rg1_image):
    def hostile(ds):
        ds.PatientName = "<script>alert(1)</script>"

    image = load_image(rewrite(rg1_uncr, tmp_path / "hostile.dcm", hostile))
    np.testing.assert_array_equal(image.stored, rg1_image.stored)
    assert "<script>" not in repr(image.metadata)


# --- folders -------------------------------------------------------------------------------------

def test_scan_keeps_good_files_and_names_the_bad(tmp_path, rg1_uncr):
    folder = tmp_path / "study"
    folder.mkdir()
    good = [rewrite(rg1_uncr, folder / "IM0001"), folder / "photo.png"]
    good[1].write_bytes(raster_bytes("PNG"))
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "notes.dcm").write_text("call the ward\n")
    cut(rg1_uncr, folder / "cut_header.dcm", _header_cut(rg1_uncr, "in_an_element_value"))
    with_sequence_before_pixels(rg1_uncr, folder / "nested.dcm",
                                nested_sequences(500, undefined_length=True))
    non_image(folder / "report.dcm", BASIC_TEXT_SR, "SR", ValueType="CONTAINER")

    result = scan([folder])

    found = sorted(inst.path for study in result.studies for inst in study.instances)
    assert found == sorted(good)
    skipped = {err.path.name: type(err) for err in result.skipped}
    assert skipped == {"empty.dcm": EmptyFileError, "notes.dcm": UnrecognisedFileError,
                       "cut_header.dcm": CorruptFileError, "nested.dcm": CorruptFileError,
                       "report.dcm": NotAnImageError}
    for err in result.skipped:
        assert_clean_message(err, err.path)
