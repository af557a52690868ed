"""`chexnet models get` as a user runs it, against a real HTTP server on 127.0.0.1 serving
checkpoints written as the sources' code writes them (seeded weights, torch's legacy format:
tests/training/package/source_models.py). CHEXNET_HOME is a temporary folder."""

from __future__ import annotations

import hashlib
import json
import socket

import numpy as np
import pytest

from chexnet.inference.cli.main import main
from chexnet.inference.package.catalogue import MIRROR_ENV, catalogue_entry
from chexnet.inference.package.registry import load_registry
from tests.inference.package.http_server import serving

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.inference import CHESTXRAY14_LABELS, Engine  # noqa: E402
from chexnet.training.package.sources.xrv_releases import XRV_PATHOLOGIES  # noqa: E402
from tests.training.package.source_models import (  # noqa: E402
    arnoweng_checkpoint,
    chexnet_densenet,
    save_legacy,
    save_xrv_release,
    xrv_densenet,
)

NAME = "chexnet-arnoweng"
XRV = catalogue_entry("densenet121-res224-nih")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def arnoweng(tmp_path_factory):
    """(arnoweng's model.pth.tar as its 2017 code saved it, the torch model it holds)."""
    net = chexnet_densenet(0)
    path = save_legacy(arnoweng_checkpoint(net), tmp_path_factory.mktemp("arno") / "model.pth.tar")
    return path.read_bytes(), net


@pytest.fixture(scope="module")
def xrv_release(tmp_path_factory):
    """(a torchxrayvision release file as written by xrv: whole model, legacy format; model)."""
    net = xrv_densenet(1, XRV_PATHOLOGIES)
    return save_xrv_release(net, tmp_path_factory.mktemp("xrv") / XRV.file), net


def test_get_from_a_mirror_registers_a_model_that_predicts(home, arnoweng, nih_png,
                                                           monkeypatch, capsys):
    arnoweng_bytes, chexnet_net = arnoweng
    sha = hashlib.sha256(arnoweng_bytes).hexdigest()
    with serving() as server:
        server.add(f"/{NAME}/model.pth.tar", arnoweng_bytes, "drop-once")
        monkeypatch.setenv(MIRROR_ENV, server.base)
        assert main(["models", "get", NAME]) == 1  # the connection is cut half way
        err = capsys.readouterr().err
        assert "run the same command again to resume" in err
        assert main(["models", "get", NAME, "--sha256", sha]) == 0
        kept = len(arnoweng_bytes) // 2
        assert server.requests[-1] == (f"/{NAME}/model.pth.tar", f"bytes={kept}-")
    captured = capsys.readouterr()
    assert f"resumed: {kept:,} bytes were already here; sha256 {sha}" in captured.err
    out = captured.out
    assert out.startswith(f"installed {NAME}: CheXNet reimplementation by arnoweng")
    assert f"sha256       {sha} (recorded in the card)" in out
    assert "labels       14: Atelectasis, Cardiomegaly" in out
    assert f"use it: chexnet predict --model {NAME} IMAGE" in out
    assert len(out.splitlines()) <= 24  # one screen

    entry = load_registry()[NAME]
    engine = Engine(entry.path, device="cpu")
    card = engine.card
    assert card.labels == CHESTXRAY14_LABELS
    assert card.extra["source_sha256"] == sha
    assert server.base in card.description
    assert sha in card.description
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        want = chexnet_net(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(engine.run(x).probs - want)) <= 1e-4  # the served weights, converted

    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed[NAME]["sha256"] == entry.sha256
    assert listed[NAME]["ok"]
    assert main(["predict", "--model", NAME, "--json", str(nih_png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["sha256"] == entry.sha256
    assert doc["model"]["tta"] == card.tta  # the source's TTA, as the importer set it
    (result,) = doc["results"]
    assert result["status"].startswith("analysed")
    probs = {f["label"]: f["probability"] for f in result["findings"]}
    assert set(probs) <= set(CHESTXRAY14_LABELS)
    assert probs
    assert all(0.0 <= p <= 1.0 for p in probs.values())

    # a second get finds the name taken before downloading anything
    assert main(["models", "get", NAME]) == 2
    assert "already exists" in capsys.readouterr().err


def test_offline_message_then_a_copied_xrv_release_imports_with_its_variant(
        home, xrv_release, nih_png, capsys):
    with socket.socket() as s:  # a port nobody listens on: "no route"
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/{XRV.file}"
    assert main(["models", "get", XRV.name, "--url", dead, "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach 127.0.0.1" in err
    assert f"chexnet models get {XRV.name} --file {XRV.file}" in err
    assert (f"chexnet import {XRV.file} --format torchxrayvision --variant {XRV.name} --out "
            f"{XRV.name}.onnx && chexnet models add {XRV.name}.onnx") in err
    assert XRV.name not in load_registry()

    copied, net = xrv_release
    wrong = hashlib.sha256(b"x").hexdigest()
    assert main(["models", "get", XRV.name, "--file", str(copied), "--sha256", wrong]) == 1
    assert f"is not the pinned {wrong}" in capsys.readouterr().err
    sha = hashlib.sha256(copied.read_bytes()).hexdigest()
    assert main(["models", "get", XRV.name, "--file", str(copied), "--sha256", sha]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"installed {XRV.name}: torchxrayvision DenseNet-121")
    assert "no AUROC published by the source" in out
    engine = Engine(load_registry()[XRV.name].path, device="cpu")
    card = engine.card
    # the variant reached the importer: only the release's trained outputs, its op_threshs
    assert len(card.labels) == len(XRV.labels) == 14
    assert set(card.thresholds) == set(card.labels)
    assert "op_threshs" in card.threshold_rule
    assert card.extra["source_sha256"] == sha
    trained = [XRV_PATHOLOGIES.index(lb) for lb in XRV.labels]
    x = np.random.default_rng(4).standard_normal((2, 1, 224, 224)).astype(np.float32) * 300
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()[:, trained]
    assert np.max(np.abs(engine.run(x).probs - want)) <= 1e-4
    assert main(["predict", "--model", XRV.name, "--json", str(nih_png)]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["status"].startswith("analysed")


@pytest.mark.parametrize(("argv", "message"), [
    (["models", "get", "nope"], "'nope' is not in the model catalogue"),
    (["models", "get"], "give a catalogue NAME"),
    (["models", "get", NAME, "--url", "http://example.org/model.pth.tar"], "only https://"),
])
def test_usage_errors(home, argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_xrv_entries_pass_their_weights_name_to_the_importer():
    """The catalogue and the importer's torchxrayvision table were transcribed independently
    from torchxrayvision's model_urls: they must agree on file and trained labels, and every
    xrv entry reaches the importer as its variant."""
    from chexnet.inference.package.catalogue import load_catalogue
    from chexnet.inference.package.get_model import import_kwargs
    from chexnet.training.package.importers import ImportOptions
    from chexnet.training.package.sources.xrv_releases import RELEASES

    xrv = [e for e in load_catalogue().values() if e.format == "torchxrayvision"]
    assert {e.name for e in xrv} == set(RELEASES)
    for e in xrv:
        release = RELEASES[e.variant]
        assert e.file == release.file
        assert e.labels == tuple(lb for lb in release.labels if lb)
        opts = ImportOptions(**import_kwargs(e, ImportOptions, e.name, "from the catalogue"))
        assert (opts.fmt, opts.variant, opts.name) == ("torchxrayvision", e.name, e.name)


def test_a_file_that_is_not_the_release_is_refused_and_nothing_registered(home, nih_png,
                                                                          capsys):
    assert main(["models", "get", NAME, "--file", str(nih_png)]) == 1
    err = capsys.readouterr().err
    assert "the arnoweng converter refused it" in err
    assert f"is it {NAME}'s model.pth.tar?" in err
    assert load_registry() == {}
    assert nih_png.is_file()  # the user's file is never touched
