"""Where an evaluation's operating thresholds come from: one number for every label, a model
card's (``--thresholds-from``, else the ``--model``'s), or 0.5."""

from __future__ import annotations

import numpy as np

from chexnet.inference.package.card import DEFAULT_THRESHOLD, ModelCard
from chexnet.inference.package.lookup import resolve_model
from chexnet.training.data.uncertain import known
from chexnet.training.evaluation.radiologist_reads import canonical_label
from chexnet.training.evaluation.rules import RULE_HELP, parse_rule

__all__ = ["RULE_HELP", "parse_rule", "resolve_thresholds", "rule_threshold"]


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


# --- site tuning rules (``chexnet tune --rule``) ------------------------------------------------

def rule_threshold(y: np.ndarray, scores: np.ndarray, rule: str) -> float | None:
    """One class's threshold under a canonical ``rule`` (a call is ``score >= threshold``), or
    None when the rule is undefined for this truth (no positives; no negatives where the rule
    needs them).

    ``sensitivity=T``: the highest threshold whose sensitivity is at least T (the fewest false
    positives that still find T of the positives). ``specificity=T``: the lowest threshold whose
    specificity is at least T (the most positives found while clearing T of the negatives;
    above the highest score when even that is not specific enough). ``max-f1`` and ``youden``:
    :func:`~.metrics.choose_thresholds`."""
    from chexnet.training.evaluation.metrics import candidate_points, choose_thresholds

    keep = known(y)  # uncertain (-1) truth is left out
    y, scores = np.asarray(y)[keep].astype(bool), np.asarray(scores)[keep]
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    kind, _, value = rule.partition("=")
    if n_pos == 0 or (n_neg == 0 and kind in ("youden", "specificity")):
        return None
    if kind in ("max-f1", "youden"):
        name = "max_f1" if kind == "max-f1" else "youden"
        return float(choose_thresholds(y[:, None], np.asarray(scores)[:, None], name)[0])
    thr, tp, fp = candidate_points(y, np.asarray(scores, dtype=np.float64))
    target = float(value)
    if kind == "sensitivity":
        return float(thr[int(np.flatnonzero(tp / n_pos >= target - 1e-12)[0])])
    ok = np.flatnonzero(1.0 - fp / n_neg >= target - 1e-12)
    return float(thr[ok[-1]]) if len(ok) else float(np.nextafter(thr[0], np.inf))
