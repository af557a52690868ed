"""The out-of-distribution gate: does the model know this kind of image?

The intended-use gate (:mod:`.intended_use`) reads headers; a PNG of a page of text, a
photograph or a blank frame has none that refuse it, and a CNN scores anything with confidence.
A package may therefore carry a second gate computed from the model's own features: its graph
returns ``ood_score``, the Mahalanobis distance of the globally average-pooled last feature map
(the map the CAMs are made from) to the training images' features (Lee et al. 2018, "A simple
unified framework for detecting out-of-distribution samples and adversarial attacks", NeurIPS;
fitted by ``chexnet-train ood-fit``), and its card the limit (``ModelCard.ood``). The statistics
are initializers of the graph, so the package's sha256 covers them and ONNX Runtime is all that
inference needs.

This module holds the decision only; :class:`~.engine.Engine` runs the graph.
"""

from __future__ import annotations

import numpy as np

#: Said on every result of a package without the check (packages made before it existed).
NO_OOD_WARNING = ("this model package has no out-of-distribution check: it scores any image, "
                  "chest radiograph or not (add one with `chexnet-train ood-fit`)")


def merge_ood(scores: np.ndarray) -> float:
    """One image's score from its crops' scores (one per crop; the mean with test-time
    augmentation, like the probabilities)."""
    return float(np.mean(np.asarray(scores, dtype=np.float64)))


def ood_reason(score: float, threshold: float) -> str | None:
    """The not-analysed reason for ``score`` above the card's ``threshold``, else None."""
    if score > threshold or not np.isfinite(score):
        return (f"does not look like a chest radiograph this model knows (out-of-distribution "
                f"score {score:.1f} above the model's limit {threshold:.1f})")
    return None
