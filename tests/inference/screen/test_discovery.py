"""Discovery and sharding: deterministic order, each file once, shards that partition the input
and agree between machines that mount the archive at different roots."""

from __future__ import annotations

import shutil

import pytest

from chexnet.inference.screen.discovery import (
    ScreenConfigError,
    Shard,
    discover,
    parse_shard,
)


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "mnt" / "archive"
    for i in range(40):
        sub = root / f"patient{i % 7:02d}" / f"study{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"IM{i:04d}").write_bytes(bytes([i]))
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x").write_bytes(b"x")
    return root


def test_order_is_deterministic_and_each_file_once(archive):
    files = discover([archive, archive / "patient00"])  # the second input overlaps the first
    paths = [f.path for f in files]
    assert len(paths) == len(set(paths)) == 40
    assert all(p.is_absolute() for p in paths)
    assert not any(".hidden" in str(p) for p in paths)
    assert [f.path for f in discover([archive])] == paths


@pytest.mark.parametrize("n", [2, 3, 5])
def test_shards_partition_the_input(archive, n):
    every = {f.path for f in discover([archive])}
    parts = [{f.path for f in discover([archive], Shard(i, n))} for i in range(n)]
    assert sum(len(p) for p in parts) == len(every)
    assert set().union(*parts) == every
    assert all(parts)  # 40 files: no empty shard


def test_shards_agree_across_mount_points(archive, tmp_path):
    elsewhere = tmp_path / "other" / "root" / "copy"
    shutil.copytree(archive, elsewhere)
    for i in range(3):
        here = {f.relpath for f in discover([archive], Shard(i, 3))}
        there = {f.relpath for f in discover([elsewhere], Shard(i, 3))}
        assert here == there


def test_parse_shard():
    assert parse_shard("1/4") == Shard(1, 4)
    assert str(parse_shard(" 0 / 2 ")) == "0/2"
    for bad in ("4/4", "1/0", "-1/2", "a/b", "1"):
        with pytest.raises(ScreenConfigError, match="shard"):
            parse_shard(bad)


def test_the_output_folder_inside_an_input_is_not_input(archive):
    out = archive / "patient00" / "worklist"
    (out / "thumbs").mkdir(parents=True)
    (out / "thumbs" / "x.jpg").write_bytes(b"\xff\xd8\xff")
    (out / "results.csv").write_text("rank\n")
    files = {f.path for f in discover([archive], exclude=out)}
    assert len(files) == 40
    assert not any("worklist" in str(p) for p in files)
