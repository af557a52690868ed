"""Where chexnet-train keeps its image cache: the user's cache folder, never the data folder
(a cache the old default left there is reused), keyed by data set and preprocessing, said
once in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import platformdirs
import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.training.cli import train as cli
from chexnet.training.data.cache import (
    build_cache,
    default_cache_dir,
    manifest_key,
)
from chexnet.training.data.dataset import load_dataset
from chexnet.training.data.phantom import write_phantom_dataset


def _cache_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("image cache")]


def test_default_cache_dir_is_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / "cache" / "training-images"
    monkeypatch.delenv("CHEXNET_HOME")
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("chexnet", appauthor=False)
                                       ) / "training-images"


def test_nih_sample_cache_goes_to_the_user_cache_not_the_data_folder(nih_sample, tmp_path,
                                                                     chexnet_home, caplog):
    legacy = nih_sample / ".chexnet-cache"
    before = sorted(p.name for p in legacy.iterdir()) if legacy.is_dir() else []
    caplog.set_level(logging.INFO)
    args = [str(nih_sample), "--size", "40", "--epochs", "1", "--workers", "0",
            "--max-steps-per-epoch", "1"]
    assert cli.main([*args, "--out", str(tmp_path / "run1")]) == 0
    splits = load_dataset(nih_sample)
    key = manifest_key([Path(p) for p in splits.table.paths], PreprocessSpec(size=40, resize=40))
    cached = chexnet_home / "cache" / "training-images" / f"{key}.u8"
    assert cached.is_file()
    assert (cached.parent / f"{key}.json").is_file()
    lines = _cache_lines(caplog)
    assert lines == [f"image cache: {cached} (built now; 420 images at 40 px); --cache-dir DIR "
                     "puts it elsewhere"]
    after = sorted(p.name for p in legacy.iterdir()) if legacy.is_dir() else []
    assert after == before  # nothing written into the data folder
    caplog.clear()
    assert cli.main([*args, "--out", str(tmp_path / "run2")]) == 0
    assert _cache_lines(caplog) == [lines[0].replace("built now", "reused")]


def test_a_cache_in_the_data_folder_from_the_old_default_is_reused(tmp_path, chexnet_home,
                                                                   caplog):
    csv_path = write_phantom_dataset(tmp_path / "ph", 40, size=32, seed=4)
    paths = [Path(p) for p in load_dataset(csv_path).table.paths]
    old = build_cache(paths, PreprocessSpec(size=32, resize=32), tmp_path / "ph" /
                      ".chexnet-cache")
    caplog.set_level(logging.INFO)
    assert cli.main([str(csv_path), "--out", str(tmp_path / "run"), "--size", "32", "--epochs",
                     "1", "--workers", "0", "--max-steps-per-epoch", "1"]) == 0
    assert _cache_lines(caplog) == [f"image cache: {old.path} (reused; 40 images at 32 px); "
                                    "found in the data folder, where chexnet-train used to "
                                    "put it"]
    assert not (chexnet_home / "cache").exists()
