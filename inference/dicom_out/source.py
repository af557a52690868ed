"""Where chexnet's DICOM results belong: the source image's study and patient, and the UIDs of
the new objects.

A DICOM source gives its header (parsed once, when the file was opened): the results go into its
study, with its Patient and General Study modules copied by highdicom from that header. A PNG or
JPEG has no header: its results make a study of their own, with an empty patient (Patient's
Name and ID are type 2: present and empty is valid, and a PACS files such a study under
"unknown" instead of under somebody else's name).

UIDs are derived from the source's identity (its SOP Instance UID, or a PNG's content hash), the
model's sha256 and the test-time augmentation, not drawn at random: writing the results of the
same image with the same model again (a screening run resumed after a kill between writing the
files and journaling the row, a repeated ``chexnet predict``) replaces the same files instead of
filing a second copy under new UIDs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydicom.dataset import Dataset

from chexnet.inference.io.image_file import ImageFile
from chexnet.inference.package.hashing import sha256_file
from chexnet.inference.scoring.prediction import ModelId, Prediction

#: Type 2 attributes of the Patient and General Study modules that highdicom reads as attributes:
#: a source without them (they are often missing from anonymised files) gets them empty.
TYPE2_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                  "AccessionNumber", "StudyID", "StudyDate", "StudyTime",
                  "ReferringPhysicianName")


_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/chexnet/dicom-results")


@dataclass(frozen=True)
class ResultUids:
    """The UIDs of one image's results (see the module docstring: derived, not random)."""

    study: str
    sr_series: str
    sc_series: str
    sr: str
    sc: str
    device: str
    tracking_root: str


def source_dataset(opened: ImageFile) -> Dataset | None:
    """A copy of a DICOM source's header, type 2 attributes that highdicom reads filled in
    empty; None for PNG and JPEG. (A copy: the parsed header belongs to the opened file.)"""
    if opened.dicom is None:
        return None
    ds = Dataset()
    ds.update({e.tag: e for e in opened.dicom.dataset if e.tag.group != 0x7FE0})
    for keyword in TYPE2_KEYWORDS:
        if keyword not in ds or ds[keyword].value is None:
            setattr(ds, keyword, "")
    return ds


def source_identity(opened: ImageFile, source: Dataset | None) -> str:
    """What identifies the source image: its SOP Instance UID, else its content's sha256."""
    if source is not None and source.get("SOPInstanceUID"):
        return f"sop:{source.SOPInstanceUID}"
    return f"sha256:{sha256_file(opened.path)}"


def result_uids(identity: str, source: Dataset | None, model: ModelId,
                prediction: Prediction) -> ResultUids:
    """The results' UIDs: one SR and one SC per image; per study, one SR series and one SC series
    per model (all images of a study scored by one model land in the same two series)."""
    run = f"{model.sha256}|{prediction.tta}"
    study = str(source.StudyInstanceUID) if source is not None and source.get(
        "StudyInstanceUID") else _uid("study", identity)
    return ResultUids(study=study,
                      sr_series=_uid("sr-series", study, run),
                      sc_series=_uid("sc-series", study, run),
                      sr=_uid("sr", identity, run), sc=_uid("sc", identity, run),
                      device=_uid("device", model.sha256),
                      tracking_root=_uid("tracking", identity, run))


def tracking_uid(root: str, label: str) -> str:
    """A measurement group's tracking UID (one per finding per image)."""
    return _uid("track", root, label)


def _uid(*parts: str) -> str:
    # A name-based (version 5) UUID of the parts as a 2.25 UID (PS3.5 B.2). pydicom's
    # generate_uid ignores its entropy sources without a prefix (a random UUID then).
    return f"2.25.{uuid.uuid5(_NAMESPACE, '|'.join(parts)).int}"
