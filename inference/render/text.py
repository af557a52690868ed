"""Predictions as text for a terminal (``chexnet predict``, the viewer's Copy findings)."""

from __future__ import annotations

import re

from chexnet.inference.io.image import Image
from chexnet.inference.package.card import DEMO_NOTICE, ModelCard
from chexnet.inference.scoring.prediction import ModelId, Prediction


def model_header(model: ModelId, card: ModelCard, providers: tuple[str, ...],
                 chosen_by: str = "") -> list[str]:
    """The model that spoke: name, version, sha256, how it was chosen (``--model``, ``user
    default``, ``bundled default``), its thresholds and device, and the DEMO notice."""
    chosen = f"  ({chosen_by})" if chosen_by else ""
    lines = [f"model  {model.name} {model.version}  sha256 {model.sha256}{chosen}",
             f"       {card.arch}, {len(card.labels)} labels, thresholds: {card.threshold_rule}; "
             f"running on {providers[0].replace('ExecutionProvider', '')}"]
    if model.demo:
        lines.append(f"!! {DEMO_NOTICE} " + (card.description or ""))
    return lines


def prediction_text(pred: Prediction, image: Image | None = None) -> list[str]:
    meta = image.metadata if image is not None else None
    facts = []
    if meta is not None:
        facts = [v for v in (meta.modality, meta.view_position, meta.body_part) if v]
        facts.append(f"{image.shape[1]}x{image.shape[0]}")
    status = pred.status.text
    lines = [f"{pred.path}  [{' '.join(facts)}]  {status}" if facts else f"{pred.path}  {status}"]
    lines += [f"  not analysed: {r}" for r in pred.reasons]
    lines += [f"  warning: {w}" for w in pred.warnings]
    if pred.analysed:
        ranked = pred.ranked
        width = max([20, *(len(f.label) + 2 for f in ranked)])  # long custom labels stay aligned
        lines.append(f"  {'rank':>4}  {'finding':<{width}}{'probability':>12}{'threshold':>11}")
        for rank, f in enumerate(ranked, 1):
            mark = "  ABOVE" if f.above_threshold else ""
            lines.append(f"  {rank:>4}  {f.label:<{width}}{f.probability:>12.3f}"
                         f"{f.threshold:>11.3f}{mark}")
        above = ", ".join(f.label for f in pred.positives) or "none"
        lines.append(f"  above operating point: {above}")
    return lines


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "image"
