"""The coded concepts of chexnet's DICOM results: one table, with where each code was checked
(docs/dicom-results.md lists the same table with its sources).

Findings are coded with SNOMED CT (``SCT``) where a code was found and checked, with DICOM's own
``DCM`` code where the DICOM standard codes the finding that way (Infiltrate, CID 6104), and with
chexnet's private scheme :data:`PRIVATE_SCHEME` only where no code was confirmed: a guessed
SNOMED number that turns out to mean something else is worse for a PACS than an honest private
code. A label no table row knows (a user's own model) gets a private code made from its name.
"""

from __future__ import annotations

import re

from highdicom.sr import CodedConcept

from chexnet.inference.package.card import label_key

#: Coding scheme designator of chexnet's private codes (PS3.16 8.2: "99" prefixes are private).
PRIVATE_SCHEME = "99CHEXNET"

#: label_key(label) -> (code value, scheme, code meaning). Sources: docs/dicom-results.md.
FINDING_CODES: dict[str, tuple[str, str, str]] = {
    "atelectasis": ("46621007", "SCT", "Atelectasis"),
    "cardiomegaly": ("8186001", "SCT", "Cardiomegaly"),
    "effusion": ("60046008", "SCT", "Pleural effusion"),
    "pleural effusion": ("60046008", "SCT", "Pleural effusion"),
    "infiltration": ("112121", "DCM", "Infiltrate"),
    "mass": ("4147007", "SCT", "Mass"),
    "nodule": ("27925004", "SCT", "Nodule"),
    "pneumonia": ("233604007", "SCT", "Pneumonia"),
    "pneumothorax": ("36118008", "SCT", "Pneumothorax"),
    "consolidation": ("95436008", "SCT", "Lung consolidation"),
    "edema": ("19242006", "SCT", "Pulmonary edema"),
    "emphysema": ("87433001", "SCT", "Pulmonary emphysema"),
    "fibrosis": ("51615001", "SCT", "Pulmonary fibrosis"),
    "pleural thickening": ("PLEURAL_THICK", PRIVATE_SCHEME, "Pleural thickening"),
    "hernia": ("52515009", "SCT", "Hernia of abdominal cavity"),
}

# Qualitative evaluation of a finding against the operating point: DICOM CID 240 Present-Absent.
PRESENT = CodedConcept("52101004", "SCT", "Present")
ABSENT = CodedConcept("272519000", "SCT", "Absent")
# Measurement names (TID 300) and units (CID 7181: "1" is UCUM's unit of a dimensionless number).
PROBABILITY = CodedConcept("122157", "DCM", "Probability")
THRESHOLD = CodedConcept("122411", "DCM", "Threshold Value")
UNITLESS = CodedConcept("1", "UCUM", "no units")
PROCEDURE = CodedConcept("363679005", "SCT", "Imaging procedure")
# TID 1500 row 12: the report's "Qualitative Evaluations" container, for the TEXT items.
QUALITATIVE_EVALUATIONS = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
COMMENT = CodedConcept("121106", "DCM", "Comment")
# No standard concept says these; chexnet's own (code values of at most 16 characters: longer
# ones need Long Code Value, which older readers do not know).
OOD_SCORE = CodedConcept("OOD_SCORE", PRIVATE_SCHEME, "Out-of-distribution score")
OPERATING_POINT_RULE = CodedConcept("OP_POINT_RULE", PRIVATE_SCHEME,
                                    "Operating point rule")
INTENDED_USE_STATUS = CodedConcept("USE_STATUS", PRIVATE_SCHEME, "Intended use status")


def finding_code(label: str) -> CodedConcept:
    """The coded concept of a model label (any spelling: "Pleural_Effusion" = "pleural
    effusion"); a private code for a label the table does not know."""
    known = FINDING_CODES.get(label_key(label))
    if known is not None:
        return CodedConcept(*known)
    value = re.sub(r"[^A-Z0-9]+", "_", label_key(label).upper()).strip("_")[:16] or "FINDING"
    return CodedConcept(value, PRIVATE_SCHEME, label.replace("_", " ")[:64])
