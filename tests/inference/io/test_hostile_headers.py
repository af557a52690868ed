"""Each class of damaged or hostile file found by the reliability review (issue 12) ends as a
result, a not-analysed result or a named error through the one per-file path
(:func:`~chexnet.inference.scoring.file_input.read_input`), never another exception, and no
message repeats the patient data planted in it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import JPEGBaseline8Bit

from chexnet.inference.errors import (
    CorruptFileError,
    ImageTooLargeError,
    InconsistentPixelDataError,
    NotAnImageError,
    UnrecognisedFileError,
)
from chexnet.inference.io.file_guard import guarded_file, library_error_facts, note_for
from chexnet.inference.package.verify import open_package
from chexnet.inference.scoring.file_input import ANALYSE, ERROR, NOT_ANALYSED, read_input
from tests.inference.io.hostile_files import (
    edited,
    lying_pixel_length,
    phi_in,
    planted_dicom,
    with_vr,
)


@pytest.fixture(scope="module")
def spec(tiny_model):
    return open_package(tiny_model).card.preprocess


def outcome(path, spec):
    read = read_input(path, spec)
    text = " ".join([*read.reasons, *read.warnings, str(read.error or "")])
    assert phi_in(text) == [], text
    return read


@pytest.mark.parametrize("keyword", ["PatientName", "PatientID"])
@pytest.mark.parametrize("vr", [b"FD", b"ZZ", b"SQ", b"UN", b"\x00\x00", b"AT", b"US"])
def test_a_corrupted_vr_on_patient_data_never_leaks_it(tmp_path, spec, keyword, vr):
    path = with_vr(planted_dicom(tmp_path / "base.dcm"), tmp_path / "bad.dcm", keyword, vr)
    read = outcome(path, spec)
    assert read.kind in (ANALYSE, ERROR)
    if read.kind == ERROR:
        assert isinstance(read.error, CorruptFileError | UnrecognisedFileError)
        assert str(path) in str(read.error)


def test_a_library_exception_is_described_by_its_type_and_tags_only():
    err = ValueError("With tag (0010,0010) got exception: could not convert 'Zyxwvu^Planted'")
    assert library_error_facts(err) == "ValueError at (0010,0010) PatientName"
    assert phi_in(note_for("Invalid value for VR PN: 'Zyxwvu^Planted'")) == []


def test_rgb_with_one_sample_per_pixel_is_named(tmp_path, spec):
    path = edited(planted_dicom(tmp_path / "a.dcm"), tmp_path / "rgb.dcm",
                  PhotometricInterpretation="RGB")
    read = outcome(path, spec)
    assert isinstance(read.error, InconsistentPixelDataError)
    assert "SamplesPerPixel 1" in str(read.error)


def test_multi_valued_rows_is_named(tmp_path, spec):
    path = edited(planted_dicom(tmp_path / "a.dcm"), tmp_path / "rows.dcm", Rows=[256, 256])
    read = outcome(path, spec)
    assert isinstance(read.error, InconsistentPixelDataError)
    assert "Rows is not one whole number (it holds 2 values)" in str(read.error)


def test_a_sheared_image_is_refused_not_scored(tmp_path, spec):
    """Columns off by one: the data is a whole row longer than the header's size needs."""
    path = edited(planted_dicom(tmp_path / "a.dcm"), tmp_path / "shear.dcm", Columns=255)
    read = outcome(path, spec)
    assert isinstance(read.error, InconsistentPixelDataError)
    assert "Rows, Columns or NumberOfFrames is wrong" in str(read.error)


def test_a_malformed_modality_lut_is_named(tmp_path, spec):
    item = Dataset()
    item.add_new(0x00283002, "US", [16, 0, 12])  # 16 entries...
    item.add_new(0x00283006, "US", [1, 2, 3])  # ...but 3 given
    item.ModalityLUTType = "OD"
    path = planted_dicom(tmp_path / "m.dcm", ModalityLUTSequence=Sequence([item]))
    read = outcome(path, spec)
    assert isinstance(read.error, InconsistentPixelDataError)
    assert "Modality LUT Sequence is malformed" in str(read.error)


def test_a_malformed_voi_lut_is_ignored_for_the_window(tmp_path, spec):
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 40])  # a 40-bit LUT: unusable
    item.add_new(0x00283006, "US", [1, 2, 3])
    path = planted_dicom(tmp_path / "v.dcm", VOILUTSequence=Sequence([item]),
                         WindowCenter="2000", WindowWidth="3500")
    assert outcome(path, spec).kind == ANALYSE


def test_a_dicomdir_says_what_it_is(tmp_path, spec):
    ds = Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.FileSetID = "DISC1"
    ds.DirectoryRecordSequence = Sequence([])
    ds.save_as(tmp_path / "DICOMDIR", enforce_file_format=True)
    read = outcome(tmp_path / "DICOMDIR", spec)
    assert read.kind == NOT_ANALYSED
    assert isinstance(read.error, NotAnImageError)
    assert "a DICOMDIR" in read.reasons[0]
    assert "a object" not in read.reasons[0]


def test_a_broken_link_is_named(tmp_path, spec):
    (tmp_path / "gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    read = outcome(tmp_path / "gone.dcm", spec)
    assert isinstance(read.error, UnrecognisedFileError)
    assert "broken link" in str(read.error)


def test_jpeg_2000_data_labelled_jpeg_baseline_is_refused_before_decoding(tmp_path, spec,
                                                                        rg1_j2kr, caplog):
    ds = pydicom.dcmread(rg1_j2kr)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.save_as(tmp_path / "mislabelled.dcm")
    with caplog.at_level(logging.DEBUG):
        read = outcome(tmp_path / "mislabelled.dcm", spec)
    assert isinstance(read.error, InconsistentPixelDataError)
    assert "holds JPEG 2000 data" in str(read.error)


@pytest.mark.parametrize(("claimed", "error", "says"), [
    (3_750_000_000, ImageTooLargeError, "far larger than a radiograph"),  # by the file's size
    (900_000_000, ImageTooLargeError, "claims 900,000,000 bytes, over the budget"),
    (100_000_000, InconsistentPixelDataError, "holds 100,000,000 bytes; the image size in the "
                                              "header needs 131,072"),
])
def test_a_lying_pixel_data_length_is_refused_from_the_header(tmp_path, spec, claimed, error,
                                                              says):
    path = lying_pixel_length(planted_dicom(tmp_path / "a.dcm"), tmp_path / "lie.dcm", claimed)
    assert path.stat().st_size > claimed  # on paper; sparse on disk
    read = outcome(path, spec)
    assert isinstance(read.error, error)
    assert says in str(read.error)


def test_a_lying_header_element_length_is_refused_before_it_is_read(tmp_path, spec):
    base = planted_dicom(tmp_path / "a.dcm").read_bytes()
    at = base.index(b"\x10\x00\x10\x00PN")  # PatientName, explicit VR: 2-byte length
    lie = base[:at + 4] + b"UT\x00\x00" + (500_000_000).to_bytes(4, "little") + base[at + 8:]
    (tmp_path / "lie.dcm").write_bytes(lie)
    os.truncate(tmp_path / "lie.dcm", 520_000_000)
    read = outcome(tmp_path / "lie.dcm", spec)
    assert isinstance(read.error, CorruptFileError)
    assert "element (0010,0010) claims 500,000,000 bytes" in str(read.error)


def test_a_lying_length_costs_no_memory(tmp_path):
    """In a fresh process, so its peak memory is this file's: refused before a byte of the
    3.75 GB is read (it was read in full before: 4 GB of memory, 25 s)."""
    path = lying_pixel_length(planted_dicom(tmp_path / "a.dcm"), tmp_path / "lie.dcm",
                              3_750_000_000)
    code = ("import resource, sys\n"
            "from chexnet.inference.io.image_file import load_image\n"
            "from chexnet.inference.errors import ChexnetInputError\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    load_image(sys.argv[1])\nexcept ChexnetInputError as err:\n"
            "    print(type(err).__name__)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=120, check=True)
    kind, grown_kb = proc.stdout.split()
    assert kind == "ImageTooLargeError"
    assert int(grown_kb) < 200_000  # KiB: nothing near the claimed size was read
    assert proc.stderr == ""


def test_library_warnings_become_notes_not_output(tmp_path, capfd):
    """A pydicom warning raised inside the guard is a note in chexnet's words (its text, which
    can quote a value, is dropped); nothing reaches stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with guarded_file(tmp_path / "x.dcm") as notes:
            pydicom.valuerep.PersonName("Zyxwvu^Planted")  # harmless
            warnings.warn_explicit("Invalid value for VR DA: '19230417'", UserWarning,
                                   pydicom.valuerep.__file__, 1)
            logging.getLogger("pydicom").error("Traceback ... Zyxwvu^Planted")
    assert sorted(notes.notes) == ["a header value does not follow the DICOM standard",
                                   "the file reader reported a non-standard detail in this file"]
    out, err = capfd.readouterr()
    assert out == err == ""
