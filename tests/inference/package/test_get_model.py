"""``chexnet models get`` without the training extra: the download completes, and the command
says how to convert it instead of failing obscurely (torch-free; a real local HTTP server)."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

import chexnet.inference.package.get_model as get_model
from chexnet.inference.cli.main import main
from chexnet.inference.package.catalogue import MIRROR_ENV, catalogue_entry
from chexnet.inference.package.registry import load_registry
from tests.inference.package.http_server import serving


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return tmp_path / "home"


def test_without_the_converter_the_download_is_kept_and_named(home, monkeypatch, capsys):
    monkeypatch.setattr(get_model, "entry_points", lambda group: [])  # chexnet[train] absent
    data = os.urandom(70_000)
    entry = catalogue_entry("densenet121-res224-nih")
    with serving() as server:
        monkeypatch.setenv(MIRROR_ENV, server.base + "/mirror")
        server.add(f"/mirror/{entry.name}/{entry.file}", data)
        assert main(["models", "get", entry.name]) == 1
        assert main(["models", "get", entry.name]) == 1  # reuses the download
        assert len(server.requests) == 1
    err = capsys.readouterr().err
    kept = home / "downloads" / entry.name / entry.file
    assert kept.read_bytes() == data
    assert f"sha256 {hashlib.sha256(data).hexdigest()}" in err
    assert f"install chexnet[train] to convert it; the downloaded file is at {kept}" in err
    assert "complete from an earlier run" in err
    assert entry.name not in load_registry()

    wrong = hashlib.sha256(b"another release").hexdigest()  # a pin the kept file does not match
    assert main(["models", "get", entry.name, "--sha256", wrong]) == 1
    assert f"is not the pinned {wrong} (the download was deleted" in capsys.readouterr().err
    assert not kept.exists()


def test_list_shows_every_release_with_its_facts(capsys):
    assert main(["models", "get", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("chexnet-arnoweng", "reproduce-chexnet", "densenet121-res224-all",
                 "densenet121-res224-mimic_ch"):
        assert f"\n{name}\n" in f"\n{out}"
    assert "licence: Apache-2.0 (repository LICENSE)" in out
    assert "AUROC:   0.774: BENCHMARKS.md" in out
    assert "sha256:  not published" in out
    assert "https://github.com/mlmed/torchxrayvision/releases/download/v1/" in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(home, monkeypatch, capsys):
    monkeypatch.setattr(get_model, "entry_points", lambda group: [])
    data = os.urandom(200_000)
    entry = catalogue_entry("chexnet-arnoweng")
    terminal = _Terminal()
    with serving() as server, monkeypatch.context() as m:
        url = server.add("/model.pth.tar", data)
        m.setattr("sys.stderr", terminal)
        assert main(["models", "get", entry.name, "--url", url]) == 1
    bar = terminal.getvalue()
    assert "100%" in bar
    assert "195k/195k" in bar  # bytes, 1024-based
    (home / "downloads").rename(home / "old")  # a piped run: no bar, the same messages
    with serving() as server:
        url = server.add("/model.pth.tar", data)
        assert main(["models", "get", entry.name, "--url", url]) == 1
    err = capsys.readouterr().err
    assert "%|" not in err
    assert "downloading chexnet-arnoweng from" in err


@pytest.mark.parametrize("bad", ["../outside", "a/b", ".hidden"])
def test_an_unusable_name_is_refused_before_anything_is_fetched(home, tmp_path, capsys, bad):
    """--name is a file name for the conversion's output: refused up front, not after a
    download and a conversion that wrote ``<name>.onnx`` outside its temporary folder."""
    copied = tmp_path / "model.pth.tar"
    copied.write_bytes(b"any bytes: never read")
    with serving() as server:
        url = server.add("/model.pth.tar", os.urandom(1000))
        for how in (["--url", url], ["--file", str(copied)]):
            assert main(["models", "get", "chexnet-arnoweng", "--name", bad, *how]) == 2
            assert "is not a usable package name" in capsys.readouterr().err
    assert server.requests == []
    assert not (home / "downloads").exists()
