"""U-Ignore in the loss and in the validation AUROCs: label entries whose target is -1
(uncertain, see :mod:`chexnet.training.data.uncertain`) count for nothing."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chexnet.training.data.uncertain import known
from chexnet.training.fit.validation import validation_aurocs


class MaskedBCEWithLogitsLoss(nn.Module):
    """BCE-with-logits averaged over the entries whose target is 0 or 1 (targets of -1 are
    masked). Without -1 targets it equals ``nn.BCEWithLogitsLoss`` (mean over all entries)."""

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        mask = (target >= 0).to(logits.dtype)  # not `known`: that is the imported helper
        loss = F.binary_cross_entropy_with_logits(logits, target.clamp(min=0), reduction="none",
                                                  pos_weight=self.pos_weight)
        return (loss * mask).sum() / mask.sum().clamp(min=1)


def known_aurocs(y: np.ndarray, probs: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Per-label validation AUROC over the images whose label is known (not -1), and the
    mean, as :func:`~chexnet.training.fit.validation.validation_aurocs` computes them."""
    y = np.asarray(y)
    if not (y < 0).any():
        return validation_aurocs(y, probs, labels)
    out: dict[str, float | None] = {}
    for j, label in enumerate(labels):
        rows = known(y[:, j])
        out[label] = validation_aurocs(y[rows][:, [j]], probs[rows][:, [j]], (label,))[label]
    defined = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(defined)) if defined else None
    return out
