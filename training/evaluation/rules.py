"""Operating-point rules as users write them (``--rule``): parsed without numpy or
scikit-learn, so that building ``chexnet``'s parser (which imports ``chexnet tune``'s options)
stays light; :mod:`.thresholds` applies them."""

from __future__ import annotations

#: ``--rule`` spellings: a target (``sensitivity=0.90``, ``specificity=0.95``) or an optimum.
RULE_HELP = "sensitivity=T | specificity=T | max-f1 | youden"


def parse_rule(text: str) -> str:
    """The canonical spelling of an operating-point rule (``sensitivity=0.9``, ``max-f1``...);
    a ValueError naming what is accepted otherwise."""
    spec = text.strip().lower().replace("_", "-").replace(" ", "")
    if spec in ("max-f1", "youden"):
        return spec
    kind, _, value = spec.partition("=")
    if kind in ("sensitivity", "specificity"):
        try:
            target = float(value)
        except ValueError:
            target = float("nan")
        if 0.0 < target < 1.0:
            return f"{kind}={target:g}"
    raise ValueError(f"rule {text!r} is not one of {RULE_HELP} (T strictly between 0 and 1)")
