"""The one atomic writer: whole file or nothing, the usual permissions, odd names."""

from __future__ import annotations

import os
import stat

import pytest

from chexnet.inference.atomic_file import atomic_output, write_atomic


def test_a_file_is_replaced_whole_with_the_mode_open_would_give(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("old", encoding="utf-8")
    write_atomic(target, "new,é\n")
    assert target.read_bytes() == "new,é\n".encode()
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "registry.json"
    target.write_text("old", encoding="utf-8")

    def killed_half_way() -> None:
        with atomic_output(target) as fh:
            fh.write(b"half")
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        killed_half_way()
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["registry.json"]


def test_a_name_that_is_not_utf8_can_be_written(tmp_path):
    target = tmp_path / os.fsdecode(b"scan-\xff.jpg")  # a surrogate-escaped file name
    write_atomic(target, b"\xff\xd8", sync_dir=True)
    assert target.read_bytes() == b"\xff\xd8"
