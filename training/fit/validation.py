"""What each epoch measures on the validation split: the loss (which picks the best epoch) and
per-label AUROCs (logged, and put in the exported package's card)."""

from __future__ import annotations

import numpy as np
import torch

from chexnet.training.evaluation.metrics import auroc


@torch.no_grad()
def evaluate_loss(model, loader, criterion, device, use_amp=False, amp_dtype=torch.float16
                  ) -> tuple[float, np.ndarray]:
    """Mean validation loss and probabilities [N, C] (sigmoid, or softmax for single-label)."""
    model.eval()
    total, n, probs = 0.0, 0, []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits = model(x).float()
        total += float(criterion(logits, y)) * len(x)
        n += len(x)
        probs.append(model.activation(logits).cpu().numpy())
    return total / max(n, 1), np.concatenate(probs) if probs else np.zeros((0, 0))


def validation_aurocs(y: np.ndarray, probs: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Per-label AUROC (None where a label has no positive or no negative) and their mean."""
    out: dict[str, float | None] = {lb: auroc(y[:, j], probs[:, j])
                                    for j, lb in enumerate(labels)}
    defined = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(defined)) if defined else None
    return out
