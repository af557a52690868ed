"""Uncertain labels (-1, "the report hedges") and the CheXpert paper's policies for them
(Irvin et al. 2019, section 4.1): U-Ignore leaves them out of the loss, U-Ones counts them
positive, U-Zeros negative. ``chexnet-train --uncertain ignore|ones|zeros`` (default ignore).

Here the policy rewrites the label table before training (ones / zeros) or keeps the -1 values
for the masked loss (:class:`chexnet.training.fit.uncertain.MaskedBCEWithLogitsLoss`).
A table without -1 values is returned as it is, whatever the policy.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from chexnet.training.data.labels import LabelTable

log = logging.getLogger(__name__)

POLICIES = ("ignore", "ones", "zeros")
UNCERTAIN = -1


def known(y: np.ndarray) -> np.ndarray:
    """Where the truth is known: not -1 (uncertain). All of a 0/1 or bool array. The one mask
    every metric, threshold, calibration and tuning step uses to leave uncertain truth out."""
    return np.asarray(y) >= 0


def count_uncertain(y: np.ndarray) -> int:
    return int((np.asarray(y) == UNCERTAIN).sum())


def apply_uncertain(table: LabelTable, policy: str) -> LabelTable:
    """The table as training sees it under ``policy`` (see the module doc)."""
    if policy not in POLICIES:
        raise ValueError(f"--uncertain {policy}: choose one of {', '.join(POLICIES)}")
    n = count_uncertain(table.y)
    if n == 0:
        return table
    log.info("%d uncertain (-1) label values: %s", n, {
        "ignore": "left out of the loss (U-Ignore)", "ones": "trained as positive (U-Ones)",
        "zeros": "trained as negative (U-Zeros)"}[policy])
    if policy == "ignore":
        return table
    y = np.where(table.y == UNCERTAIN, 1 if policy == "ones" else 0, table.y)
    return replace(table, y=y.astype(np.uint8))
