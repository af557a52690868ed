"""The SCP in-process with the tiny model: what it acknowledges is on disk, byte for byte, and
screened; what it cannot take gets a failure status and the node keeps serving; callers it does
not know are turned away at association; its logs hold no patient data."""

from __future__ import annotations

import errno
import logging
import time
from pathlib import Path

import pydicom
import pynetdicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from chexnet.inference.node import scp
from chexnet.inference.node.spool import uid_key
from tests.inference.io.dicom_factory import new_dataset
from tests.node.helpers import make_study, scu, store_files, wait_for_rows, wait_until

BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def basic_text_sr(path: Path) -> Path:
    ds = new_dataset(BASIC_TEXT_SR, "SR")
    ds.PatientName, ds.PatientID = "Secret^Patient", "SECRET-ID-42"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.save_as(path, enforce_file_format=True)
    return path


def malformed(path: Path) -> Path:
    """Valid file meta, then a dataset whose first element has an unknown VR ('ZZ')."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with open(path, "wb") as fh:
        fh.write(b"\0" * 128 + b"DICM")
        pydicom.filewriter.write_file_meta_info(fh, meta, enforce_standard=True)
        fh.write(b"\x08\x00\x16\x00ZZ\x04\x001.2\x00" + b"\x10\x00\x10\x00PN\x06\x00Secret")
    return path


def test_acknowledged_instances_are_spooled_as_sent_and_screened(node, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    files = make_study(tmp_path / "in", 3)
    assert set(store_files(node.port, files).values()) == {0x0000}
    for f in files:  # on disk, under hashed names, the dataset exactly as sent
        ds = pydicom.dcmread(f)
        spooled = (node.out / "spool" / uid_key(ds.StudyInstanceUID)
                   / f"{uid_key(ds.SOPInstanceUID)}.dcm")
        assert pydicom.dcmread(spooled).PixelData == ds.PixelData
    rows = wait_for_rows(node.out, 3)
    assert {r["status"] for r in rows} <= {"ok", "not_analysed"}
    combined = node.out / "results.csv"  # every study's rows, ranked together
    wait_until(lambda: combined.is_file() and combined.read_text().count("\n") == 4)
    assert "SECRET" not in caplog.text
    assert "Secret" not in caplog.text
    assert ds.StudyInstanceUID not in caplog.text  # UIDs appear hashed only


def test_echo_and_unknown_calling_ae_is_rejected(node, tmp_path):
    assoc = scu().associate("127.0.0.1", node.port, ae_title="CHEXNET")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    stranger = scu("STRANGER").associate("127.0.0.1", node.port, ae_title="CHEXNET")
    assert stranger.is_rejected
    files = make_study(tmp_path / "in", 1)
    assert store_files(node.port, files, ae_title="STRANGER") == {files[0]: None}
    assert not any((node.out / "spool").iterdir())


def test_non_image_object_is_stored_and_not_analysed(node, tmp_path):
    sr = basic_text_sr(tmp_path / "sr.dcm")
    assert store_files(node.port, [sr]) == {sr: 0x0000}
    (row,) = wait_for_rows(node.out, 1)
    assert row["status"] == "not_analysed"
    assert row["reason"]


def test_malformed_dataset_fails_and_the_node_keeps_serving(node, tmp_path, caplog,
                                                            monkeypatch):
    monkeypatch.setattr(pynetdicom._config, "STORE_SEND_CHUNKED_DATASET", True)  # as on disk
    bad = malformed(tmp_path / "bad.dcm")
    assert store_files(node.port, [bad]) == {bad: scp.CANNOT_UNDERSTAND}
    assert "Secret" not in caplog.text
    good = make_study(tmp_path / "in", 1)
    assert store_files(node.port, good) == {good[0]: 0x0000}
    assert len(wait_for_rows(node.out, 1)) == 1


def test_a_spool_that_cannot_be_written_fails_the_store(node, tmp_path, monkeypatch):
    def disk_full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(scp, "spool_instance", disk_full)
    files = make_study(tmp_path / "in", 1)
    assert store_files(node.port, files) == {files[0]: scp.OUT_OF_RESOURCES}
    monkeypatch.undo()
    assert store_files(node.port, files) == {files[0]: 0x0000}


def test_late_instances_are_screened_without_rescreening_the_others(node, tmp_path):
    files = make_study(tmp_path / "in", 3)
    store_files(node.port, files[:2])
    wait_for_rows(node.out, 2)
    store_files(node.port, files)  # one new, two sent again: same spool files
    time.sleep(1.5)
    rows = wait_for_rows(node.out, 3)
    assert len(rows) == 3
    (journal,) = (node.out / "results").glob("*/results.jsonl")
    assert journal.read_text().count('"type":"row"') == 3  # nothing scored twice
