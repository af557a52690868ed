"""Predictions as text for a terminal and as CAM overlay PNGs (shared by CLI commands)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from chexnet.inference.io.image import Image
from chexnet.inference.package.card import ModelCard
from chexnet.inference.render.cam import blend, cam_on_image, colourise
from chexnet.inference.scoring.prediction import ModelId, Prediction

MAX_OVERLAY_SIDE = 1024


def model_header(model: ModelId, card: ModelCard, providers: tuple[str, ...]) -> list[str]:
    lines = [f"model  {model.name} {model.version}  sha256 {model.sha256}",
             f"       {card.arch}, {len(card.labels)} labels, thresholds: {card.threshold_rule}; "
             f"running on {providers[0].replace('ExecutionProvider', '')}"]
    if model.demo:
        lines.append("!! DEMO MODEL: not for clinical use. " + (card.description or ""))
    return lines


def prediction_text(pred: Prediction, image: Image | None = None) -> list[str]:
    meta = image.metadata if image is not None else None
    facts = []
    if meta is not None:
        facts = [v for v in (meta.modality, meta.view_position, meta.body_part) if v]
        facts.append(f"{image.shape[1]}x{image.shape[0]}")
    status = pred.status.replace("_", " ")
    lines = [f"{pred.path}  [{' '.join(facts)}]  {status}" if facts else f"{pred.path}  {status}"]
    lines += [f"  not analysed: {r}" for r in pred.reasons]
    lines += [f"  warning: {w}" for w in pred.warnings]
    if pred.analysed:
        lines.append(f"  {'rank':>4}  {'finding':<20}{'probability':>12}{'threshold':>11}")
        for rank, f in enumerate(pred.ranked, 1):
            mark = "  ABOVE" if f.above_threshold else ""
            lines.append(f"  {rank:>4}  {f.label:<20}{f.probability:>12.3f}{f.threshold:>11.3f}"
                         f"{mark}")
        above = ", ".join(f.label for f in pred.positives) or "none"
        lines.append(f"  above operating point: {above}")
    return lines


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"


def write_cam_png(image: Image, pred: Prediction, finding: str, out_dir: Path, *,
                  threshold: float, opacity: float, stem: str | None = None) -> Path:
    """Write the image with ``finding``'s CAM overlaid; returns the PNG's path.

    The region the model did not see (outside the crop box) is outlined, so nobody mistakes an
    uncoloured margin for a negative finding.
    """
    grey = image.display_u8()
    h, w = grey.shape
    scale = min(1.0, MAX_OVERLAY_SIDE / max(h, w))
    out_shape = (max(1, round(h * scale)), max(1, round(w * scale)))
    if scale < 1.0:
        grey = np.asarray(PILImage.fromarray(grey).resize((out_shape[1], out_shape[0]),
                                                          PILImage.Resampling.BILINEAR))
    heat = cam_on_image(pred.cam(finding), pred.crop_box, image.shape, out_shape)
    rgb = PILImage.fromarray(blend(grey, colourise(heat, threshold, opacity)))
    box = pred.crop_box
    if not box.covers(image.shape):
        ImageDraw.Draw(rgb).rectangle(
            [box.x0 * scale, box.y0 * scale, box.x1 * scale - 1, box.y1 * scale - 1],
            outline=(255, 255, 0), width=2)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = safe_name(stem or image.path.stem)
    target = out_dir / f"{stem}_{safe_name(finding)}_cam.png"
    tmp = target.with_suffix(".tmp.png")
    rgb.save(tmp)
    tmp.replace(target)
    return target
