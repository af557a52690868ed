"""Where an evaluation's operating thresholds come from: one number for every label, a model
card's (``--thresholds-from``, else the ``--model``'s), or 0.5."""

from __future__ import annotations

import numpy as np

from chexnet.inference.package.card import DEFAULT_THRESHOLD, ModelCard
from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.scoring.engine import Engine
from chexnet.training.evaluation.radiologist_reads import canonical_label


def resolve_thresholds(labels: tuple[str, ...], card: ModelCard | None = None,
                       value: str | None = None, from_package: str | None = None
                       ) -> tuple[np.ndarray, str]:
    """Per-label thresholds and where they came from. ``value``: ``--thresholds`` ("card", a
    number, or None for the default); ``from_package``: ``--thresholds-from``; ``card``: the
    ``--model``'s card, if any. A number applies to every label; "card" takes the
    ``from_package`` card, else ``card``; the default is the card's with either, else 0.5."""
    spec = value or ("card" if card is not None or from_package else None)
    if spec is None:
        return np.full(len(labels), DEFAULT_THRESHOLD), f"{DEFAULT_THRESHOLD} for every label"
    if spec != "card":
        return np.full(len(labels), float(spec)), f"{float(spec):g} for every label (--thresholds)"
    if from_package:
        card = Engine(resolve_model(from_package), device="cpu").card
        where = f"--thresholds-from {from_package}"
    else:
        where = "the --model package"
    explicit = {canonical_label(lb): float(v) for lb, v in card.thresholds.items()}
    missing = [lb for lb in labels if lb not in explicit]
    values = np.array([explicit.get(lb, DEFAULT_THRESHOLD) for lb in labels])
    source = f"model card of {where} ({card.name} {card.version}; rule: {card.threshold_rule})"
    if missing:
        source += f"; {DEFAULT_THRESHOLD} for labels the card lacks: {', '.join(missing)}"
    return values, source
