"""``--batch-size auto``: the estimate, the budget, the choice."""

from __future__ import annotations

import argparse

import pytest

from chexnet.inference.scoring import batch_size as bs
from chexnet.inference.scoring.batch_size import (
    activation_bytes,
    auto_batch_size,
    batch_size_arg,
    largest_batch,
    parse_meminfo,
)
from chexnet.inference.scoring.engine import Engine


def test_largest_power_of_two_that_fits():
    assert largest_batch(100, 50, 1000) == 8        # room for 9 -> 8
    assert largest_batch(100, 50, 850) == 8         # exactly 8 fit
    assert largest_batch(100, 50, 849) == 4
    assert largest_batch(100, 2000, 1000) == 1      # nothing fits: one at a time
    assert largest_batch(1, 0, 10**12) == bs.MAX_AUTO_BATCH
    assert largest_batch(1, 0, 10**12, max_batch=48) == 32
    with pytest.raises(ValueError, match="positive"):
        largest_batch(0, 0, 10)


def test_activation_estimate_sums_the_tiny_graphs_tensors(tiny_model):
    # tests/tiny_model.py at batch 1, by hand: image, pooled (3x7x7), pre/f (8x7x7 each),
    # gap/gap2 (8 each), logits/probs (14 each), f_flat (8x49), cams_flat/cams (14x49 each)
    values = (3 * 224 * 224 + 3 * 49 + 2 * 8 * 49 + 2 * 8 + 2 * 14 + 8 * 49 + 2 * 14 * 49)
    assert activation_bytes(tiny_model) == 4 * values


def test_auto_uses_the_budget_and_falls_back_without_one(tiny_model, monkeypatch):
    per = activation_bytes(tiny_model)
    weights = tiny_model.stat().st_size
    monkeypatch.setattr(bs, "cpu_available_bytes", lambda: 4 * (weights + 20 * per))
    assert auto_batch_size(tiny_model, gpu=False) == 16  # budget = a quarter
    monkeypatch.setattr(bs, "gpu_free_bytes", lambda device_id=0: None)
    assert auto_batch_size(tiny_model, gpu=True, fallback=8) == 8
    free = bs.GPU_WORKSPACE_BYTES + weights + 200 * per
    monkeypatch.setattr(bs, "gpu_free_bytes", lambda device_id=0: int(free / 0.8) + 1)
    assert auto_batch_size(tiny_model, gpu=True) == 128
    engine = Engine(tiny_model, device="cpu", batch_size="auto")
    assert engine.batch_size == 16


def test_meminfo_and_argument():
    text = "MemTotal:       16318412 kB\nMemFree:  1 kB\nMemAvailable:    8000000 kB\n"
    assert parse_meminfo(text) == 8000000 * 1024
    assert parse_meminfo("MemTotal: 1 kB\n") is None
    assert batch_size_arg("auto") == "auto"
    assert batch_size_arg("AUTO") == "auto"
    assert batch_size_arg("32") == 32
    for bad in ("0", "-3", "many"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer or 'auto'"):
            batch_size_arg(bad)


def test_gpu_free_memory_from_nvidia_smi(monkeypatch):
    calls = []

    def fake(fields, device_id=0, units=True):
        calls.append((fields, device_id, units))
        return "81559\n"

    monkeypatch.setattr(bs, "nvidia_smi", fake)
    assert bs.gpu_free_bytes(1) == 81559 * 1024**2
    assert calls == [("memory.free", 1, False)]
    monkeypatch.setattr(bs, "nvidia_smi", lambda *a, **k: None)
    assert bs.gpu_free_bytes() is None
