"""Decode workers sized to keep the engine fed."""

from __future__ import annotations

import pytest

from chexnet.inference.scoring.feeding import cores_to_feed, decode_workers, screening_rate


def test_workers_match_the_engine_rate_within_the_cores():
    # an 8,000 img/s engine and 70 img/s per decode core: 115 cores to feed it
    assert cores_to_feed(8000, 70) == 115
    assert cores_to_feed(140, 70) == 2
    assert cores_to_feed(141, 70) == 3
    assert decode_workers(8000, 70, cores=16) == 15  # one core kept for the main process
    assert decode_workers(100, 70, cores=16) == 2  # a slow engine needs few decoders
    assert decode_workers(8000, 70, cores=1) == 1
    assert decode_workers(8000, 70, cores=16, reserve=0) == 16


def test_rate_is_the_slower_stage():
    assert screening_rate(8000, 70, 15) == 1050  # decode-bound
    assert screening_rate(100, 70, 2) == 100  # engine-bound
    with pytest.raises(ValueError, match="positive"):
        cores_to_feed(0, 70)
