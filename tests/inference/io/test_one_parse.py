"""One path per flow (issue #11): a file is recognised and its header parsed once, however often
it is then loaded or its header shown; what the opened file gives is what its path gives."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pydicom.filereader
import pytest
from PIL import Image as PILImage
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ImplicitVRLittleEndian

import chexnet.inference.io as io_package
import chexnet.inference.io.dicom_checks as dicom_checks
import chexnet.inference.io.dicom_header as dicom_header
from chexnet.inference.io.header_rows import header_rows
from chexnet.inference.io.image_file import load_image, open_image_file
from chexnet.inference.io.study import scan

from .dicom_factory import make_dicom

PIX = np.tile(np.arange(96, dtype=np.uint16) * 40, (80, 1))


def a_folder(folder: Path, rg1_j2kr: Path) -> dict[str, Path]:
    """Two native DICOMs of one series, JPEG 2000 RG1, a bare implicit VR dataset (no preamble,
    no file meta) and a PNG."""
    folder.mkdir()
    series, study = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    files = {
        "pa.dcm": make_dicom(folder / "pa.dcm", PIX, bits_stored=12, study_uid=study,
                             series_uid=series, InstanceNumber=1, PatientName="Doe^Jane"),
        "ll.dcm": make_dicom(folder / "ll.dcm", PIX, bits_stored=12, study_uid=study,
                             series_uid=series, InstanceNumber=2, ViewPosition="LL"),
        "rg1.dcm": Path(shutil.copy(rg1_j2kr, folder / "rg1.dcm")),
        "bare.dcm": folder / "bare.dcm",
        "photo.png": folder / "photo.png",
    }
    ds = pydicom.dcmread(files["pa.dcm"])
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    ds.save_as(files["bare.dcm"], enforce_file_format=False, implicit_vr=True,
               little_endian=True)
    PILImage.fromarray((PIX // 16).astype(np.uint8)).save(files["photo.png"])
    return files


@pytest.fixture
def reads(monkeypatch) -> Counter:
    """Counts, by (what, file name), of every way the io layer reads a file: recognising it by
    content ("sniff", counted in all), parsing its DICOM header ("parse": pydicom's read_partial,
    which dcmread calls too), reading the rest after the header ("rest"), the deflate guard's
    look at the file meta ("file meta")."""
    counts: Counter = Counter()

    def spy(module, name: str, what: str, file_of) -> None:
        real = getattr(module, name)

        def counted(*args, **kwargs):
            counts[what, file_of(*args)] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)

    for module in [m for n, m in sys.modules.items() if n.startswith("chexnet.inference.io.")]:
        if hasattr(module, "sniff_bytes"):
            spy(module, "sniff_bytes", "sniff", lambda head: None)
    spy(pydicom.filereader, "read_partial", "parse", lambda fh, *a: Path(fh.name).name)
    spy(dicom_header, "read_partial", "parse", lambda fh, *a: Path(fh.name).name)
    spy(dicom_header, "read_dataset", "rest", lambda fh, *a: Path(fh.name).name)
    spy(dicom_checks, "read_file_meta_info", "file meta", lambda path: Path(path).name)
    return counts


def test_scan_then_loads_and_header_rows_read_each_header_once(tmp_path, rg1_j2kr, reads):
    files = a_folder(tmp_path / "study", rg1_j2kr)
    reads.clear()  # building the folder read one of its files

    instances = [i for s in scan([tmp_path / "study"]).studies for i in s.instances]
    assert sorted(i.path.name for i in instances) == sorted(files)
    for inst in instances:
        inst.load()
        inst.load(min_size=64)  # the viewer's thumbnail: a second load
        inst.header_rows()

    assert reads["sniff", None] == len(files)
    dicoms = [name for name in files if name.endswith(".dcm")]
    assert {name for what, name in reads if what == "parse"} == set(dicoms)
    for name in dicoms:
        assert reads["parse", name] == 1, name  # the header, by scan(), never again
        assert reads["rest", name] == 2, name  # the pixel data, once per load
        # The deflate guard reads the transfer syntax from the file meta (files with one).
        assert reads["file meta", name] == (name != "bare.dcm"), name


def test_load_image_reads_a_file_once(tmp_path, rg1_j2kr, reads):
    files = a_folder(tmp_path / "study", rg1_j2kr)
    reads.clear()
    for path in files.values():
        load_image(path)
    assert reads["sniff", None] == len(files)
    for name in [n for n in files if n.endswith(".dcm")]:
        # One pass: the header up to the pixel data (whose length is checked against it before
        # it is read), then the rest, from the same open file; nothing is read twice.
        assert (reads["parse", name], reads["rest", name]) == (1, 1), name


def test_an_opened_file_gives_what_its_path_gives(tmp_path, rg1_j2kr):
    files = a_folder(tmp_path / "study", rg1_j2kr)
    instances = [i for s in scan([tmp_path / "study"]).studies for i in s.instances]
    for inst in instances:
        for min_size in (None, 448):
            got, expected = inst.load(min_size=min_size), load_image(inst.path, min_size=min_size)
            np.testing.assert_array_equal(got.stored, expected.stored)
            assert (got.metadata, got.windows, got.invert, got.warnings, got.decode_scale) == (
                expected.metadata, expected.windows, expected.invert, expected.warnings,
                expected.decode_scale)
        assert inst.header_rows() == header_rows(inst.path)
        for with_pixels in (False, True):
            opened = open_image_file(inst.path, with_pixels=with_pixels)
            assert opened.header_rows() == header_rows(inst.path)
    pa = next(i for i in instances if i.path == files["pa.dcm"])
    assert ("(0010,0010)", "Patient's Name", "Doe^Jane") in pa.header_rows()


def test_the_opened_header_keeps_no_pixels_and_no_patient_data_in_its_repr(tmp_path, rg1_j2kr):
    a_folder(tmp_path / "study", rg1_j2kr)
    for inst in [i for s in scan([tmp_path / "study"]).studies for i in s.instances]:
        inst.load()
        if inst.kind == "dicom":
            assert "PixelData" not in inst.file.dicom.dataset  # each load reads it, none keeps it
        assert "Doe" not in repr(inst) + repr(inst.file) + repr(inst.file.dicom)


def test_one_instance_loads_on_several_threads_at_once(tmp_path):
    make_dicom(tmp_path / "IM1", PIX, bits_stored=12)
    inst = scan([tmp_path]).studies[0].instances[0]
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(lambda _: inst.load(), range(12)))
    for image in images:
        np.testing.assert_array_equal(image.stored, PIX)


def test_a_file_changed_after_the_scan_is_opened_afresh(tmp_path):
    path = make_dicom(tmp_path / "IM1", PIX, bits_stored=12)
    inst = scan([tmp_path]).studies[0].instances[0]
    make_dicom(path, PIX[:40, :50], bits_stored=12)  # another image under the same name
    assert inst.load().shape == (40, 50)
    path.write_bytes(b"")
    with pytest.raises(Exception, match="empty"):
        inst.load()


def test_implicit_vr_pixel_data_whose_length_reads_like_a_vr(tmp_path, rg1_uncr):
    """Its length's low bytes are "PA": read as the first element of a dataset, pydicom would
    take the pixel data for explicit VR; the rest is read with the header's encoding instead."""
    ds = pydicom.dcmread(rg1_uncr)
    ds.Rows, ds.Columns = 212, 194
    pixels = (np.arange(212 * 194) % 30000).astype("<u2").reshape(212, 194)
    ds.PixelData = pixels.tobytes()
    assert len(ds.PixelData).to_bytes(4, "little")[:2] == b"PA"
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    path = tmp_path / "implicit.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=True)
    np.testing.assert_array_equal(load_image(path).stored, pixels)


@pytest.mark.parametrize("module", ["chexnet.inference.io", "chexnet.inference.io.study"])
def test_importing_io_loads_no_model_runtime_gui_or_training_framework(module):
    heavy = ["onnxruntime", "onnx", "PySide6", "torch", "torchvision"]
    if module == "chexnet.inference.io":
        heavy += ["pydicom", "PIL"]  # the package alone loads no reader at all
    code = (f"import sys, {module}\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_names_its_api_lazily():
    assert {"load_image", "open_image_file", "scan", "Image", "ImageFile"} <= set(
        io_package.__all__)
    assert io_package.load_image is load_image
    assert io_package.scan is scan
