"""How many decode processes keep an engine fed (``chexnet screen`` on a GPU).

On a GPU the engine scores thousands of images a second and decoding becomes the bottleneck:
each decode process turns files into model inputs at about ``decode_img_s_per_core`` (one core
each). :func:`cores_to_feed` is the count that matches the engine's rate;
:func:`decode_workers` caps it by the cores there are, keeping ``reserve`` for the main process
(batching, the engine's host side, the journal). When the cap binds, screening is decode-bound at
about ``workers * decode_img_s_per_core`` (:func:`screening_rate`).
"""

from __future__ import annotations

import math


def cores_to_feed(engine_img_s: float, decode_img_s_per_core: float) -> int:
    """Decode processes whose combined rate reaches ``engine_img_s``."""
    if engine_img_s <= 0 or decode_img_s_per_core <= 0:
        raise ValueError("rates must be positive")
    return max(1, math.ceil(engine_img_s / decode_img_s_per_core))


def decode_workers(engine_img_s: float, decode_img_s_per_core: float, cores: int,
                   reserve: int = 1) -> int:
    """Decode processes for this machine: enough to feed the engine, at most ``cores -
    reserve``, at least 1."""
    return max(1, min(cores_to_feed(engine_img_s, decode_img_s_per_core), cores - reserve))


def screening_rate(engine_img_s: float, decode_img_s_per_core: float, workers: int) -> float:
    """Images/s of a pipeline with ``workers`` decode processes: the slower of the two stages."""
    return min(engine_img_s, workers * decode_img_s_per_core)
