"""CAM localisation against radiologists' boxes: the pointing game over a box list (Zhang et
al. 2016), per class and overall."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chexnet.inference.render.cam import cam_on_image
from chexnet.training.evaluation.inputs import Box


def pointing_game(boxes: list[Box], cams: dict[str, tuple], labels: tuple[str, ...],
                  tolerance: float = 0.0) -> dict:
    """Hit rate per class of the CAM peak inside each radiologist box."""
    by_name = {Path(k).name: v for k, v in cams.items()}
    per_class: dict[str, dict] = {}
    skipped = {"image_not_evaluated": 0, "label_not_predicted": 0}
    for box in boxes:
        if box.label not in labels:
            skipped["label_not_predicted"] += 1
            continue
        if Path(box.image).name not in by_name:
            skipped["image_not_evaluated"] += 1
            continue
        raw, crop_box, shape = by_name[Path(box.image).name]
        heat = cam_on_image(raw[labels.index(box.label)], crop_box, shape)
        hit = pointing_game_hit(heat, (box.x, box.y, box.w, box.h), tolerance)
        entry = per_class.setdefault(box.label, {"n_boxes": 0, "hits": 0})
        entry["n_boxes"] += 1
        entry["hits"] += int(hit)
    for entry in per_class.values():
        entry["hit_rate"] = entry["hits"] / entry["n_boxes"]
    n = sum(e["n_boxes"] for e in per_class.values())
    return {"per_class": per_class, "n_boxes": n,
            "hit_rate": sum(e["hits"] for e in per_class.values()) / n if n else None,
            "skipped_boxes": skipped,
            "tolerance_px": tolerance,
            "rule": "hit when the peak of the label's CAM, mapped onto the image, lies in the box "
                    f"grown by {tolerance:g} px on each side (Zhang et al. 2016 use 15 px)"}


def pointing_game_hit(heatmap: np.ndarray, box: Sequence[float], tolerance: float = 0.0) -> bool:
    """Pointing game (Zhang et al., ECCV 2016): is the heat map's peak inside the box?

    ``heatmap`` [H, W] on the image grid (NaN where the model saw nothing, as
    :func:`chexnet.inference.render.cam.cam_on_image` returns); ``box`` = (x, y, w, h) in the same
    pixel coordinates, x along columns. The peak pixel's centre must lie within the box grown
    by ``tolerance`` pixels on each side. A flat map points nowhere and counts as a miss.
    """
    heat = np.asarray(heatmap, dtype=np.float64)
    finite = np.isfinite(heat)
    if not finite.any():
        raise ValueError("the heat map has no finite value")
    values = np.where(finite, heat, -np.inf)
    if np.nanmax(heat) == np.nanmin(heat):
        return False
    row, col = np.unravel_index(int(np.argmax(values)), heat.shape)
    x, y, w, h = (float(v) for v in box)
    cx, cy = col + 0.5, row + 0.5
    return (x - tolerance <= cx <= x + w + tolerance) and (y - tolerance <= cy <= y + h
                                                           + tolerance)
