"""The published CheXNet AUROCs, and when ``chexnet eval`` may set a model beside them.

They are figures for the 14 ChestX-ray14 findings on NIH ChestX-ray14 images, so the comparison
is made only when the model's label set is ChestX-ray14's (labels matched as the evaluation
matches them: :func:`~.radiologist_reads.canonical_label`; a ``No Finding`` output aside) and
the images and labels are NIH ChestX-ray14's (an NIH label file: ``Data_Entry_2017*.csv`` or the
NIH expert labels, naming NIH image files). Otherwise report.md says why there is none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from chexnet.inference.package.card import CHESTXRAY14_LABELS, is_normal_label
from chexnet.training.evaluation.markdown import md_escape
from chexnet.training.evaluation.radiologist_reads import canonical_label

#: CheXNet paper (Rajpurkar et al. 2017), Table 2: AUROC on the ChestX-ray14 official test set.
PUBLISHED_CHEXNET_AUROC = {
    "Atelectasis": 0.8094, "Cardiomegaly": 0.9248, "Effusion": 0.8638, "Infiltration": 0.7345,
    "Mass": 0.8676, "Nodule": 0.7802, "Pneumonia": 0.7680, "Pneumothorax": 0.8887,
    "Consolidation": 0.7901, "Edema": 0.8878, "Emphysema": 0.9371, "Fibrosis": 0.8047,
    "Pleural_Thickening": 0.8062, "Hernia": 0.9164,
}

#: Label file layouts that are NIH ChestX-ray14's own (see ``inputs.label_file_layout``).
NIH_LAYOUTS = ("nih-data-entry", "nih-expert-labels")
#: How NIH ChestX-ray14 names its image files: patient (8 digits) _ follow-up (3 digits).
NIH_IMAGE_NAME = re.compile(r"^\d{8}_\d{3}\.png$")


def published_comparison(model_labels: Sequence[str], label_layout: str,
                         image_ids: Sequence[str]) -> dict:
    """metrics.json's ``published_comparison``: ``made`` (bool) and ``reason`` (why, or why
    not)."""
    findings = {canonical_label(lb) for lb in model_labels if not is_normal_label(lb)}
    if findings != set(CHESTXRAY14_LABELS):
        shown = ", ".join(sorted(str(lb) for lb in model_labels)[:8])
        more = "" if len(model_labels) <= 8 else f", ... ({len(model_labels)} labels)"
        return {"made": False, "reason": "the model's labels are not the 14 ChestX-ray14 "
                                         f"findings (it predicts {shown}{more})"}
    if label_layout not in NIH_LAYOUTS:
        return {"made": False, "reason": "the labels are not NIH ChestX-ray14's (--labels is "
                                         "neither a Data_Entry_2017 file nor the NIH expert "
                                         "labels)"}
    other = next((i for i in image_ids if not NIH_IMAGE_NAME.match(Path(i).name)), None)
    if other is not None:
        return {"made": False, "reason": f"the images are not NIH ChestX-ray14's ({other} is "
                                         "not named like 00000001_000.png)"}
    return {"made": True, "reason": "a ChestX-ray14 model evaluated on NIH ChestX-ray14 images "
                                    "and labels"}


def published_auroc(label: str, comparison: dict) -> float | None:
    """The paper's AUROC for ``label`` where the comparison is made, else None."""
    return PUBLISHED_CHEXNET_AUROC.get(canonical_label(label)) if comparison["made"] else None


def report_lines(m: dict, table) -> list[str]:
    """report.md's section on the published CheXNet (``table`` renders Markdown tables)."""
    comparison = m.get("published_comparison") or {"made": True}
    if not comparison["made"]:
        return ["## Against the published CheXNet", "",
                f"No comparison with the published CheXNet AUROCs: "
                f"{md_escape(comparison['reason'])}. Those figures are for the 14 ChestX-ray14 "
                "findings on NIH ChestX-ray14 images (Rajpurkar et al. 2017), so they say "
                "nothing about this model on these data.", ""]
    rows = []
    for lb, e in m["per_class"].items():
        ref = e.get("published_chexnet_auroc")
        if ref is None:
            continue
        diff = None if e["auroc"] is None else e["auroc"] - ref
        rows.append([md_escape(lb), "–" if e["auroc"] is None else f"{e['auroc']:.4f}",
                     f"{ref:.4f}", "–" if diff is None else f"{diff:+.4f}"])
    if not rows:
        return []
    return ["## Against the published CheXNet", "",
            "CheXNet's AUROCs are those of its paper (Rajpurkar et al. 2017, Table 2) on the "
            "ChestX-ray14 official test set. **This evaluation uses a different set of images "
            "and labels, so the comparison is indicative only**: a difference here is not a "
            "measured difference between the models.", "",
            *table(["Finding", "This model", "CheXNet (paper)", "Difference"], rows)]
