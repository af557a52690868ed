"""Real images as inputs for checking a rewritten graph against the one it came from."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from chexnet.inference.errors import ChexnetError
from chexnet.inference.io.image_file import load_image
from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.inference.scoring.prepare import prepare_input


def first_model_inputs(paths: Iterable[Path], spec: PreprocessSpec, n: int = 4) -> np.ndarray:
    """The model inputs [K, C, S, S] of the first ``n`` of ``paths`` that load and pass the
    intended-use gate (others are skipped); ValueError when none does."""
    inputs = []
    for path in paths:
        try:
            prepared = prepare_input(load_image(path), spec)
        except (ChexnetError, OSError, ValueError):
            continue
        if prepared.analyse:
            inputs.append(prepared.model_input())
        if len(inputs) == n:
            break
    if not inputs:
        raise ValueError("none of the images could be prepared to check the new graph")
    return np.concatenate(inputs)
