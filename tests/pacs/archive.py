"""A small archive of chest radiographs in a real Orthanc, for the PACS tests (library, command
line and viewer): three patients with CR studies of known IDs, accessions and dates, plus the
real JPEG 2000 radiograph RG1_J2KR. ``silent_port`` is a socket that accepts connections and
never answers (a timeout); ``closed_port`` a port nothing listens on."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from tests.inference.io.dicom_factory import make_dicom
from tests.node.helpers import cr_pixels, free_port
from tests.pacs.orthanc import Orthanc

#: (patient ID, name, accession, study date, description, images)
PATIENTS = (("PAT-001", "Alpha^Ann", "ACC-1001", "20240105", "CHEST PA", 3),
            ("PAT-002", "Beta^Bob", "ACC-1002", "20240210", "CHEST PA AND LAT", 2),
            ("PAT-003", "Gamma^Gus", "ACC-1003", "20230315", "CHEST AP", 1))


@dataclass
class Archive:
    orthanc: Orthanc
    move_port: int = 0  # where Orthanc's modality "chexnet" (AE CHEXNET) is: C-MOVE's target
    studies: dict[str, str] = field(default_factory=dict)  # accession -> study UID
    files: dict[str, list[Path]] = field(default_factory=dict)  # study UID -> source files

    @property
    def address(self) -> str:
        return f"ORTHANC@127.0.0.1:{self.orthanc.dicom_port}"


def populate(orthanc: Orthanc, folder: Path, j2k: Path, move_port: int = 0,
             size: int = 128) -> Archive:
    archive = Archive(orthanc, move_port)
    folder.mkdir(parents=True, exist_ok=True)
    for k, (pid, name, accession, date, description, n) in enumerate(PATIENTS):
        study, series = generate_uid(), generate_uid()
        files = [make_dicom(folder / f"{pid}_{i}.dcm", cr_pixels(k * 100 + i, size),
                            bits_stored=12, study_uid=study, series_uid=series, PatientID=pid,
                            PatientName=name, AccessionNumber=accession, StudyDate=date,
                            StudyDescription=description, SeriesNumber=1)
                 for i in range(n)]
        archive.studies[accession] = study
        archive.files[study] = files
    ds = pydicom.dcmread(j2k, stop_before_pixels=True)
    archive.studies["RG1"] = str(ds.StudyInstanceUID)
    archive.files[str(ds.StudyInstanceUID)] = [j2k]
    for files in archive.files.values():
        for f in files:
            orthanc.upload(f)
    return archive


@contextmanager
def running_archive(root: Path, j2k: Path, *, move_port: int = 0,
                    **orthanc_options) -> Iterator[Archive]:
    """A real Orthanc under ``root`` holding :func:`populate`'s studies, stopped afterwards.
    ``move_port``: Orthanc's port, also registered as C-MOVE's target (see ``Archive``)."""
    orthanc = Orthanc(root / "orthanc", move_port or free_port(), **orthanc_options)
    try:
        yield populate(orthanc, root / "sources", j2k, move_port)
    finally:
        orthanc.stop()


def content(path: Path) -> tuple[str, str, str]:
    """What must survive a round trip: SOP Instance UID, transfer syntax, pixel data hash."""
    ds = pydicom.dcmread(path)
    return (str(ds.SOPInstanceUID), str(ds.file_meta.TransferSyntaxUID),
            hashlib.sha256(ds.PixelData).hexdigest())


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def closed_port() -> int:
    return free_port()
