"""The heat map as a DICOM Secondary Capture: what a reader sees in the PACS next to the image.

An RGB 8-bit image (highdicom ``SCImage``): the source's display rendering, at most
:data:`~chexnet.inference.render.overlay.MAX_OVERLAY_SIDE` pixels on its long side, with the top
finding's CAM burned in by the one overlay composer and the same legend band as
``chexnet predict --cam-out`` (model, version, sha256, finding, CAM threshold, DEMO notice)
plus a line with the finding's probability and operating point. Burned In Annotation is YES:
the legend is part of the pixels, and so is nothing about the patient.
"""

from __future__ import annotations

import datetime

import numpy as np
from highdicom.sc import SCImage
from pydicom.dataset import Dataset

from chexnet.inference.dicom_out.source import ResultUids
from chexnet.inference.package.card import ModelCard
from chexnet.inference.render.overlay import cam_picture
from chexnet.inference.scoring.prediction import ModelId, Prediction

MANUFACTURER = "chexnet"
SC_SERIES_DESCRIPTION = "chexnet heat map"
SC_SERIES_NUMBER = 9902
#: CAM display of the heat map (as ``chexnet predict --cam-out`` and the screening thumbnails).
CAM_THRESHOLD, CAM_OPACITY = 0.5, 0.5


def build_sc(source: Dataset | None, base: np.ndarray, prediction: Prediction, model: ModelId,
             card: ModelCard, uids: ResultUids, software_version: str, *,
             cam_threshold: float = CAM_THRESHOLD, opacity: float = CAM_OPACITY) -> SCImage:
    """The Secondary Capture of ``prediction``'s top finding drawn on ``base`` (the display
    rendering, any size of the image the prediction's crop box refers to)."""
    top = prediction.top
    extra = () if top is None else (
        f"{top.label}: probability {top.probability:.3f}, operating point {top.threshold:.3f}"
        f" ({'at or above' if top.above_threshold else 'below'})",)
    picture = cam_picture(base, prediction, None if top is None else top.label,
                          prediction.image_shape, threshold=cam_threshold, opacity=opacity,
                          extra_lines=extra)
    rgb = np.ascontiguousarray(np.asarray(picture.convert("RGB"), dtype=np.uint8))
    common = dict(pixel_array=rgb, photometric_interpretation="RGB", bits_allocated=8,
                  coordinate_system="PATIENT", series_instance_uid=uids.sc_series,
                  series_number=SC_SERIES_NUMBER, sop_instance_uid=uids.sc, instance_number=1,
                  manufacturer=MANUFACTURER, patient_orientation=("L", "F"),  # replaced below
                  software_versions=software_version,
                  series_description=SC_SERIES_DESCRIPTION)
    if source is not None:
        sc = SCImage.from_ref_dataset(ref_dataset=source, **common)
        sc.copy_patient_and_study_information(source)
        sc.SourceImageSequence = [_reference(source)]
        sc.ReferencedImageSequence = [_reference(source)]
    else:
        now = datetime.datetime.now()  # the study is made now: its date is today's
        sc = SCImage(study_instance_uid=uids.study, patient_id="", patient_name="",
                     study_date=now.date(), study_time=now.time(), **common)
    # The heat map shows the image as stored, so it shares the source's orientation; unknown
    # (a PNG, a source without one): type 2C, present and empty rather than made up.
    orientation = None if source is None else source.get("PatientOrientation")
    sc.PatientOrientation = orientation if orientation else ""
    # General Series: Laterality is type 2C (paired body parts only): the source's; absent for
    # a body part it names (a chest is unpaired); empty ("unknown") when nothing says which.
    known = source if source is not None else Dataset()
    if known.get("BodyPartExamined"):
        sc.BodyPartExamined = known.BodyPartExamined
    if known.get("Laterality") or not known.get("BodyPartExamined"):
        sc.Laterality = known.get("Laterality") or ""
    sc.BurnedInAnnotation = "YES"
    sc.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    sc.DerivationDescription = (
        f"Class activation map of {top.label if top else 'no finding'} by {model.name} "
        f"{model.version} (sha256 {model.sha256}) blended on the display rendering"
        + ("; DEMO model, not for clinical use" if card.demo else ""))[:1024]
    sc.ImageComments = "DEMO MODEL: not for clinical use." if card.demo else \
        "Machine-generated heat map: not a diagnosis."
    return sc


def _reference(source: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item
