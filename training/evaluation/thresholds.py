"""Where an evaluation's operating thresholds come from: one number for every label, a model
card's (``--thresholds-from``, else the ``--model``'s), or 0.5."""

from __future__ import annotations

import numpy as np

from chexnet.inference.package.card import DEFAULT_THRESHOLD, ModelCard
from chexnet.inference.package.lookup import resolve_model
from chexnet.training.evaluation.radiologist_reads import canonical_label


def resolve_thresholds(labels: tuple[str, ...], card: ModelCard | None = None,
                       value: str | None = None, from_package: str | None = None
                       ) -> tuple[np.ndarray, str, list[str]]:
    """Per-label thresholds, where they came from, and per label how it was chosen (a card's
    ``extra["threshold_rules"]``, where it has them). ``value``: ``--thresholds`` ("card", a
    number, or None for the default); ``from_package``: ``--thresholds-from``; ``card``: the
    ``--model``'s card, if any. A number applies to every label; "card" takes the
    ``from_package`` card, else ``card``; the default is the card's with either, else 0.5."""
    spec = value or ("card" if card is not None or from_package else None)
    n = len(labels)
    if spec is None:
        return (np.full(n, DEFAULT_THRESHOLD), f"{DEFAULT_THRESHOLD} for every label",
                [f"{DEFAULT_THRESHOLD}: the default (no model card)"] * n)
    if spec != "card":
        return (np.full(n, float(spec)), f"{float(spec):g} for every label (--thresholds)",
                [f"--thresholds {float(spec):g}"] * n)
    if from_package:
        card = resolve_model(from_package).card  # the card only: no ONNX Runtime session
        where = f"--thresholds-from {from_package}"
    else:
        where = "the evaluated model"
    explicit = {canonical_label(lb): float(v) for lb, v in card.thresholds.items()}
    card_rules = {canonical_label(lb): str(rule)
                  for lb, rule in (card.extra.get("threshold_rules") or {}).items()}
    missing = [lb for lb in labels if lb not in explicit]
    values = np.array([explicit.get(lb, DEFAULT_THRESHOLD) for lb in labels])
    rules = [card_rules.get(lb, "model card") if lb in explicit
             else f"{DEFAULT_THRESHOLD}: not in the model card" for lb in labels]
    source = f"model card of {where} ({card.name} {card.version}; rule: {card.threshold_rule})"
    if missing:
        source += f"; {DEFAULT_THRESHOLD} for labels the card lacks: {', '.join(missing)}"
    return values, source, rules
