"""The results as a DICOM Structured Report: a TID 1500 Measurement Report (highdicom).

Why TID 1500: it is the template PACS viewers and AI result pipelines already read, and an
image-level classifier fits it without bending: one TID 1501 measurement group per finding
(finding type = the finding's code, :mod:`.codes`), holding the probability (TID 300, unitless
UCUM "1"), the operating threshold (a second TID 300 measurement: "Threshold Value"), whether
the probability is at or above it (a qualitative evaluation: the finding, Present/Absent, CID
240) and the algorithm (name = card name, version = card version, parameters: sha256, DEMO flag,
operating-point rule). The out-of-distribution score, when the package has the check, is a
group of its own with its limit. Intended-use status, warnings, the operating-point rule and the
DEMO notice are TEXT items of the report's "Qualitative Evaluations" container (TID 1500 row
12), which highdicom's MeasurementReport does not build, so it is appended to the highdicom
content tree as highdicom content items.

The SR is in the source's study, references the source image (image library, each group's
source image, Current Requested Procedure Evidence) and the heat-map Secondary Capture
(evidence). A PNG/JPEG source has no DICOM identity: its groups and library point at the
Secondary Capture, the only image of its study.
"""

from __future__ import annotations

import highdicom as hd
from highdicom.sr import (
    AlgorithmIdentification,
    ContainerContentItem,
    ContentSequence,
    DeviceObserverIdentifyingAttributes,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    QualitativeEvaluation,
    RelationshipTypeValues,
    SourceImageForMeasurementGroup,
    TextContentItem,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes as dicom_codes

from chexnet.inference.dicom_out import codes
from chexnet.inference.dicom_out.sc import MANUFACTURER
from chexnet.inference.dicom_out.source import ResultUids, tracking_uid
from chexnet.inference.package.card import DEMO_NOTICE, ModelCard
from chexnet.inference.scoring.prediction import ModelId, Prediction

SR_SERIES_DESCRIPTION = "chexnet SR"
SR_SERIES_NUMBER = 9901
CONTAINS = RelationshipTypeValues.CONTAINS


def build_sr(source: Dataset | None, sc: Dataset, prediction: Prediction, model: ModelId,
             card: ModelCard, uids: ResultUids, software_version: str
             ) -> hd.sr.Comprehensive3DSR:
    """The Structured Report of ``prediction`` (analysed) for ``source`` (None: a PNG/JPEG,
    whose study is the Secondary Capture ``sc``'s)."""
    image = source if source is not None else sc
    algorithm = AlgorithmIdentification(
        name=card.name, version=card.version,
        parameters=[f"sha256={model.sha256}", f"demo={'true' if card.demo else 'false'}",
                    f"tta={prediction.tta}",
                    f"operating_point_rule={card.threshold_rule}"[:1024]])
    # The findings ranked, as `chexnet predict` lists them ("normal" is no finding: left out).
    groups = [_finding_group(f.label, f.probability, f.threshold, image, algorithm, uids)
              for f in prediction.ranked]
    if prediction.ood_score is not None:
        groups.append(_ood_group(prediction.ood_score, card.ood_threshold, image, algorithm,
                                 uids))
    observer = ObserverContext(
        observer_type=dicom_codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=uids.device, name=card.name, manufacturer_name=MANUFACTURER,
            model_name=f"{card.name} {card.version}"[:64]))
    report = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=observer),
        procedure_reported=codes.PROCEDURE, imaging_measurements=groups,
        referenced_images=[library_entry(image)])
    report[0].ContentSequence.append(_evaluations(prediction, card))
    return hd.sr.Comprehensive3DSR(
        evidence=[image] if source is None else [source, sc], content=report[0],
        series_instance_uid=uids.sr_series, series_number=SR_SERIES_NUMBER,
        sop_instance_uid=uids.sr, instance_number=1, manufacturer=MANUFACTURER,
        is_complete=True, is_final=False, is_verified=False,
        series_description=SR_SERIES_DESCRIPTION, software_versions=software_version,
        coding_schemes=[hd.coding_schemes.CodingSchemeIdentificationItem(
            designator=codes.PRIVATE_SCHEME, name="chexnet private codes",
            responsible_organization="chexnet")])


def library_entry(image: Dataset) -> Dataset:
    """What the image library says about ``image``: its UIDs and size, and for a radiograph the
    TID 1603 descriptors (orientation, imager pixel spacing) only when the header has both:
    highdicom requires them for CR/DX, and many CRs (the pydicom-data RG1 among them) have no
    Imager Pixel Spacing. Without them the entry is given as modality "OT", which only steers
    highdicom (the entry's coded modality comes from the SOP class)."""
    entry = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "Rows", "Columns", "Modality",
                    "FrameOfReferenceUID", "PatientOrientation", "ImagerPixelSpacing"):
        if image.get(keyword) not in (None, ""):
            setattr(entry, keyword, image[keyword].value)
    complete = all(len(entry.get(k) or ()) == 2
                   for k in ("PatientOrientation", "ImagerPixelSpacing"))
    if not complete or "Modality" not in entry:
        entry.Modality = "OT"
    return entry


def _finding_group(label: str, probability: float, threshold: float, image: Dataset,
                   algorithm: AlgorithmIdentification, uids: ResultUids
                   ) -> MeasurementsAndQualitativeEvaluations:
    finding = codes.finding_code(label)
    present = codes.PRESENT if probability >= threshold else codes.ABSENT
    return MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=tracking_uid(uids.tracking_root, label),
                                               identifier=label[:64]),
        finding_type=finding, algorithm_id=algorithm,
        source_images=[SourceImageForMeasurementGroup.from_source_image(image)],
        measurements=[Measurement(name=codes.PROBABILITY, value=probability,
                                  unit=codes.UNITLESS, algorithm_id=algorithm),
                      Measurement(name=codes.THRESHOLD, value=threshold, unit=codes.UNITLESS)],
        qualitative_evaluations=[QualitativeEvaluation(name=finding, value=present)])


def _ood_group(score: float, limit: float | None, image: Dataset,
               algorithm: AlgorithmIdentification, uids: ResultUids
               ) -> MeasurementsAndQualitativeEvaluations:
    measurements = [Measurement(name=codes.OOD_SCORE, value=float(score), unit=codes.UNITLESS,
                                algorithm_id=algorithm)]
    if limit is not None:
        measurements.append(Measurement(name=codes.THRESHOLD, value=float(limit),
                                        unit=codes.UNITLESS))
    return MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=tracking_uid(uids.tracking_root, "ood"),
                                               identifier="out-of-distribution check"),
        algorithm_id=algorithm,
        source_images=[SourceImageForMeasurementGroup.from_source_image(image)],
        measurements=measurements)


def _evaluations(prediction: Prediction, card: ModelCard) -> ContainerContentItem:
    """TID 1500's Qualitative Evaluations container: what a reader must read as text."""
    container = ContainerContentItem(name=codes.QUALITATIVE_EVALUATIONS,
                                     relationship_type=CONTAINS)
    items = [TextContentItem(name=codes.INTENDED_USE_STATUS, value=prediction.status.value,
                             relationship_type=CONTAINS),
             TextContentItem(name=codes.OPERATING_POINT_RULE, value=card.threshold_rule or
                             "not stated", relationship_type=CONTAINS)]
    items += [TextContentItem(name=codes.COMMENT, value=f"Warning: {w}",
                              relationship_type=CONTAINS) for w in prediction.warnings]
    if card.demo:
        items.append(TextContentItem(name=codes.COMMENT, value=DEMO_NOTICE,
                                     relationship_type=CONTAINS))
    container.ContentSequence = ContentSequence(items)
    return container

