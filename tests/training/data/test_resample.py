"""Resampling the training split (the hospital CAD paper: small classes up to a minimum count,
normal class down-sampled): exact per-epoch counts, determinism, and never the val/test splits."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.training.cli import train as train_cli
from chexnet.training.data.phantom import write_phantom_dataset
from chexnet.training.data.resample import NO_LABEL_GROUP, ResamplingSampler, plan, resample_groups

# single-label one-hot table: 50 normal, 12 effusion, 3 mass, 0 nodule
LABELS = ("normal", "effusion", "mass", "nodule")
COUNTS = {"normal": 50, "effusion": 12, "mass": 3}


def _one_hot() -> np.ndarray:
    rows = [LABELS.index(lb) for lb, n in COUNTS.items() for _ in range(n)]
    rows = np.random.default_rng(1).permutation(rows)
    return np.eye(len(LABELS), dtype=np.uint8)[rows]


def _drawn_per_class(sampler: ResamplingSampler, y: np.ndarray, epoch: int) -> Counter:
    idx = sampler.indices(epoch)
    return Counter(LABELS[int(np.argmax(y[i]))] for i in idx)


def test_small_classes_reach_the_minimum_and_normal_is_capped():
    y = _one_hot()
    sampler = ResamplingSampler(y, LABELS, seed=3, min_per_class=20, max_normal=30)
    for epoch in range(3):
        got = _drawn_per_class(sampler, y, epoch)
        assert got == Counter({"normal": 30, "effusion": 20, "mass": 20})
        assert len(sampler.indices(epoch)) == len(sampler) == 70
    # a class below the minimum: every image used as evenly as possible (3 images -> 20 draws:
    # each image 6 or 7 times), never one image 20 times
    idx = sampler.indices(0)
    mass_rows = np.flatnonzero(y[:, LABELS.index("mass")])
    uses = Counter(int(i) for i in idx if i in set(mass_rows.tolist()))
    assert sorted(uses.values()) == [6, 7, 7]
    # normal images are drawn without replacement, a fresh subset per epoch
    normal_rows = set(np.flatnonzero(y[:, 0]).tolist())
    seen = set()
    for epoch in range(6):
        drawn = [int(i) for i in sampler.indices(epoch) if int(i) in normal_rows]
        assert len(drawn) == len(set(drawn)) == 30
        seen |= set(drawn)
    assert seen == normal_rows  # over a few epochs every normal image is used


def test_classes_above_the_minimum_are_drawn_once_each():
    y = _one_hot()
    sampler = ResamplingSampler(y, LABELS, seed=0, min_per_class=10)
    idx = sampler.indices(0)
    effusion = np.flatnonzero(y[:, 1])
    assert sorted(int(i) for i in idx if y[i, 1]) == effusion.tolist()
    assert _drawn_per_class(sampler, y, 0)["normal"] == 50


def test_normal_fraction_sets_the_share_of_each_epoch():
    y = _one_hot()
    sampler = ResamplingSampler(y, LABELS, seed=0, min_per_class=20, normal_fraction=0.219)
    got = _drawn_per_class(sampler, y, 0)
    others = got["effusion"] + got["mass"]
    assert others == 40
    assert got["normal"] == round(0.219 / (1 - 0.219) * 40) == 11
    assert got["normal"] / sum(got.values()) == pytest.approx(0.219, abs=0.01)


def test_draws_depend_on_seed_and_epoch_only():
    y = _one_hot()
    a = ResamplingSampler(y, LABELS, seed=5, min_per_class=20, max_normal=30)
    b = ResamplingSampler(y, LABELS, seed=5, min_per_class=20, max_normal=30)
    assert np.array_equal(a.indices(2), b.indices(2))
    b.set_epoch(2)
    assert list(b) == a.indices(2).tolist()
    assert not np.array_equal(a.indices(1), a.indices(2))
    c = ResamplingSampler(y, LABELS, seed=6, min_per_class=20, max_normal=30)
    assert not np.array_equal(a.indices(2), c.indices(2))


def test_multi_label_groups_by_rarest_label_and_unlabelled_images_are_normal():
    y = np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 1], [0, 0, 0]])
    group, names = resample_groups(y, ("a", "b", "c"))
    assert names == ("a", "b", "c", NO_LABEL_GROUP)
    # counts a=3, b=2, c=1: row 0 (a, b) -> b; row 4 (b, c) -> c; rows 3, 5 -> no label
    assert group.tolist() == [1, 0, 0, 3, 2, 3]
    p, _ = plan(y, ("a", "b", "c"), max_normal=1)
    assert p.normal == NO_LABEL_GROUP
    assert p.drawn == (2, 1, 1, 1)


def test_bad_options_are_refused():
    y = np.eye(2, dtype=np.uint8)[[0, 1, 1]]
    with pytest.raises(ValueError, match="no normal class"):
        plan(y, ("a", "b"), max_normal=1)
    with pytest.raises(ValueError, match="not both"):
        plan(_one_hot(), LABELS, max_normal=3, normal_fraction=0.2)


def test_training_resamples_only_the_training_split(tmp_path):
    csv = write_phantom_dataset(tmp_path / "ph", 60, size=32, seed=0,
                                labels=("effusion", "cardiomegaly"))
    run = tmp_path / "run"
    assert train_cli.main([str(csv), "--out", str(run), "--size", "32", "--epochs", "1",
                           "--workers", "0", "--task", "single-label", "--min-per-class", "25",
                           "--max-normal", "10", "--batch-size", "8",
                           "--max-steps-per-epoch", "1", "--seed", "0"]) == 0
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    per_class = record["resampling"]["per_class"]
    train_ids = (run / "splits" / "train_list.txt").read_text().split()
    assert sum(v["images"] for v in per_class.values()) == len(train_ids)
    for name, v in per_class.items():
        want = min(v["images"], 10) if name == "No Finding" else max(v["images"], 25)
        assert v["drawn_per_epoch"] == want, per_class
    # validation predictions cover the validation split exactly once each (never resampled)
    val = np.load(run / "val_predictions.npz")
    assert sorted(val["ids"].tolist()) == sorted(
        (run / "splits" / "val_list.txt").read_text().split())
