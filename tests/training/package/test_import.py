"""``chexnet import``: random torchvision models saved in each public layout -> packages whose
ONNX Runtime outputs match torch on the same weights; unsafe pickles are refused, never run."""

from __future__ import annotations

import copy
import hashlib
import os
import pickle
import re
import sys
import types
import uuid

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")
torchvision = pytest.importorskip("torchvision", reason="training extra not installed")

from chexnet.inference import CHESTXRAY14_LABELS, Engine  # noqa: E402
from chexnet.inference.cli.main import main  # noqa: E402
from chexnet.training.package.importers import (  # noqa: E402
    XRV_PATHOLOGIES,
    ImportOptions,
    convert,
)
from tests.training.package.source_models import (  # noqa: E402
    arnoweng_checkpoint,
    chexnet_densenet,
    perturb,
)

nn = torch.nn
XRV_USED = tuple(lb if i % 4 else "" for i, lb in enumerate(XRV_PATHOLOGIES))  # 5 unused


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs(channels: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, channels, 224, 224)).astype(np.float32)


def _import(args: list[str]) -> int:
    return main(["import", *map(str, args)])


@pytest.fixture(scope="module")
def chexnet_net():
    """A CheXNet-shaped DenseNet-121: classifier Sequential(Linear(1024, 14), Sigmoid())."""
    return chexnet_densenet(0)


@pytest.fixture(scope="module")
def files(tmp_path_factory, chexnet_net):
    d = tmp_path_factory.mktemp("sources")
    torch.save(arnoweng_checkpoint(chexnet_net), d / "model.pth.tar")
    torch.save({"model": chexnet_net, "best_loss": 0.14, "epoch": 5,
                "rng_state": torch.get_rng_state(), "LR": 1e-4}, d / "checkpoint")
    return d


@pytest.fixture(scope="module")
def packages(tmp_path_factory, files):
    out = tmp_path_factory.mktemp("packages")
    assert _import([files / "model.pth.tar", "--format", "arnoweng",
                    "--out", out / "arno.onnx"]) == 0
    assert _import([files / "checkpoint", "--format", "reproduce-chexnet", "--out",
                    out / "repro.onnx", "--name", "repro", "--version", "7", "--no-demo"]) == 0
    return out


def test_arnoweng_matches_torch_and_card(packages, files, chexnet_net):
    engine = Engine(packages / "arno.onnx", device="cpu")
    x = _inputs(3)
    with torch.no_grad():
        want = chexnet_net(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(engine.run(x).probs - want)) <= 1e-4
    card = engine.card
    assert card.labels == CHESTXRAY14_LABELS
    assert (card.preprocess.size, card.preprocess.resize, card.preprocess.channels) == (224, 256, 3)
    assert "ten" in card.description.lower()
    assert card.tta == "ten-crop"  # scored as the source's test script scores
    assert "arnoweng" in card.description
    assert card.thresholds == dict.fromkeys(CHESTXRAY14_LABELS, 0.5)
    assert card.threshold_rule == "not provided by the source: 0.5"
    assert card.demo is True
    assert card.version == "imported"
    assert card.name == "imported-arnoweng"
    assert card.extra["source_format"] == "arnoweng"
    assert card.extra["source_file"] == "model.pth.tar"
    assert card.extra["source_sha256"] == _sha(files / "model.pth.tar")


def test_reproduce_chexnet_matches_torch_and_card(packages, files, chexnet_net):
    engine = Engine(packages / "repro.onnx", device="cpu")
    x = _inputs(3, seed=2)
    with torch.no_grad():
        want = chexnet_net(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(engine.run(x).probs - want)) <= 1e-4
    card = engine.card
    assert (card.name, card.version, card.demo) == ("repro", "7", False)
    assert card.labels == CHESTXRAY14_LABELS
    assert (card.preprocess.size, card.preprocess.resize) == (224, 224)
    assert card.tta == "none"
    assert card.extra["source_sha256"] == _sha(files / "checkpoint")
    assert card.extra["source_file"] == "checkpoint"


def test_torchxrayvision_keeps_used_outputs_and_op_threshs(tmp_path):
    torch.manual_seed(1)
    net = torchvision.models.densenet121(weights=None, num_classes=18)
    net.features.conv0 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    perturb(net, 1)
    op = torch.rand(18, dtype=torch.float64) * 0.5 + 0.05
    op[0] = float("nan")  # an unused output's NaN: dropped with the output
    op[5] = float("nan")  # a used output without an operating point: no threshold, 0.5
    src = tmp_path / "densenet121-res224-test.pt"
    torch.save({**net.state_dict(), "op_threshs": op}, src)
    assert _import([src, "--format", "torchxrayvision", "--out", tmp_path / "xrv.onnx",
                    "--labels", ",".join(XRV_USED)]) == 0
    engine = Engine(tmp_path / "xrv.onnx", device="cpu")
    keep = [i for i, lb in enumerate(XRV_USED) if lb]
    x = _inputs(1) * 300.0  # roughly the [-1024, 1024] range torchxrayvision feeds
    with torch.no_grad():
        want = torch.sigmoid(net(torch.from_numpy(x))).numpy()[:, keep]
    got = engine.run(x)
    assert got.probs.shape == (2, len(keep))
    assert np.max(np.abs(got.probs - want)) <= 1e-4
    card = engine.card
    assert card.labels == tuple(XRV_USED[i] for i in keep)
    assert card.thresholds == pytest.approx({XRV_USED[i]: float(op[i]) for i in keep if i != 5})
    assert "op_threshs" in card.threshold_rule
    assert "0.5" in card.threshold_rule
    spec = card.preprocess
    assert (spec.channels, spec.size, spec.resize) == (1, 224, 224)
    assert spec.mean == (0.5,)
    assert spec.std == pytest.approx((1 / 2048,))
    assert card.extra["source_sha256"] == _sha(src)


def test_torchxrayvision_whole_pickled_model(tmp_path, monkeypatch):
    """Released torchxrayvision files pickle the whole xrv DenseNet: read through stand-ins
    admitted under torchxrayvision's class names, never by importing or running its code."""
    fake = types.ModuleType("torchxrayvision.models")

    class DenseNet(nn.Module):
        pass

    DenseNet.__module__, DenseNet.__qualname__ = fake.__name__, "DenseNet"
    fake.DenseNet = DenseNet
    parent = types.ModuleType("torchxrayvision")
    parent.models = fake
    monkeypatch.setitem(sys.modules, "torchxrayvision", parent)
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    torch.manual_seed(3)
    tv = perturb(torchvision.models.densenet121(weights=None, num_classes=18), 3)
    whole = DenseNet()
    whole.features = tv.features
    whole.features.conv0 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    whole.classifier = tv.classifier
    whole.upsample = nn.Upsample(size=(224, 224), mode="bilinear", align_corners=False)
    whole.register_buffer("op_threshs", torch.linspace(0.1, 0.6, 18))
    torch.save(whole, tmp_path / "xrv-whole.pt")
    monkeypatch.delitem(sys.modules, fake.__name__)  # loading must not need the real classes
    monkeypatch.delitem(sys.modules, "torchxrayvision")
    model, card = convert(tmp_path / "xrv-whole.pt",
                          ImportOptions(fmt="torchxrayvision", labels=XRV_USED))
    keep = [i for i, lb in enumerate(XRV_USED) if lb]
    x = torch.from_numpy(_inputs(1, seed=5)[:1] * 300.0)
    with torch.no_grad():
        want = torch.sigmoid(tv.classifier(torch.relu(whole.features(x)).mean(dim=(2, 3))))
        got, _ = model.probs_and_cams(x)
    assert torch.allclose(got, want[:, keep], atol=1e-5)
    assert card.thresholds == pytest.approx(
        {XRV_USED[i]: float(whole.op_threshs[i]) for i in keep})


def test_torchvision_densenet_and_resnet(tmp_path, chexnet_net):
    """Conversion only: the CLI/export/ORT path is the one the formats above go through."""
    labels = tuple(f"finding {i}" for i in range(14))
    plain = copy.deepcopy(chexnet_net)
    plain.classifier = plain.classifier[0]
    torch.save(plain.state_dict(), tmp_path / "tv.pt")
    model, card = convert(tmp_path / "tv.pt", ImportOptions(fmt="torchvision", labels=labels))
    x = torch.from_numpy(_inputs(3, seed=3)[:1])
    with torch.no_grad():
        got, _ = model.probs_and_cams(x)
        assert torch.allclose(got, torch.sigmoid(plain(x)), atol=1e-5)
    assert card.labels == labels
    assert (card.preprocess.size, card.preprocess.resize, card.arch) == (224, 224, "densenet121")
    assert card.extra["source_sha256"] == _sha(tmp_path / "tv.pt")

    # ResNet-101: conversion only (the export path is the one tested above).
    torch.manual_seed(2)
    res = perturb(torchvision.models.resnet101(weights=None, num_classes=3), 2)
    torch.save(res.state_dict(), tmp_path / "r101.pt")
    model, card = convert(tmp_path / "r101.pt", ImportOptions(
        fmt="torchvision", arch="resnet101", labels=("a", "b", "c")))
    xs = torch.from_numpy(_inputs(3, seed=4)[:1])
    with torch.no_grad():
        got, _ = model.probs_and_cams(xs)
        assert torch.allclose(got, torch.sigmoid(res(xs)), atol=1e-5)
    assert card.arch == "resnet101"
    assert card.labels == ("a", "b", "c")


def _one_line_error(capsys, rc: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_usage_errors(tmp_path, files, capsys):
    out = tmp_path / "x.onnx"
    rc = _import([tmp_path / "nope.pt", "--format", "arnoweng", "--out", out])
    _one_line_error(capsys, rc, "not found")
    rc = _import([files / "model.pth.tar", "--format", "torchxrayvision", "--out", out])
    _one_line_error(capsys, rc, "torchxrayvision")
    rc = _import([files / "model.pth.tar", "--format", "torchvision", "--labels", "a,b",
                  "--out", out])
    _one_line_error(capsys, rc, "not a torchvision densenet121 state dict", "--format")
    rc = _import([files / "model.pth.tar", "--format", "arnoweng", "--labels", "a,b,c",
                  "--out", out])
    _one_line_error(capsys, rc, "14 outputs", "3 labels")
    with pytest.raises(SystemExit) as done:  # refused by the parser: not among the choices
        _import([files / "model.pth.tar", "--format", "torchvision", "--arch", "vgg16",
                 "--labels", "a", "--out", out])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert "global average pooling" in err
    assert "vgg16_bn" in err
    rc = _import([files / "checkpoint", "--format", "arnoweng", "--out", out])
    _one_line_error(capsys, rc, "refused", "reproduce-chexnet")
    assert not out.exists()


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", ["arnoweng", "reproduce-chexnet", "torchxrayvision"])
@pytest.mark.parametrize("how", ["torch", "pickle", "nested"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, capsys, fmt, how):
    marker = f"/tmp/PWNED_{uuid.uuid4().hex}"
    src = tmp_path / "evil.pt"
    if how == "pickle":
        src.write_bytes(pickle.dumps(_Evil(marker)))
    else:
        torch.save(_Evil(marker) if how == "torch" else {"model": _Evil(marker)}, src)
    args = [src, "--format", fmt, "--out", tmp_path / "evil.onnx"]
    rc = _import(args)
    _one_line_error(capsys, rc, "refused", "arbitrary code", "state_dict", "system")
    assert not os.path.exists(marker)
    assert not (tmp_path / "evil.onnx").exists()


@pytest.mark.parametrize(("content", "says"), [
    (b"hello world\n" * 50, "in no layout torch.save writes"),  # torch raised "KeyError 101"
    (b"", "an empty file"),
    (b"<!DOCTYPE html><html><body>Sign in</body></html>", "a web page (HTML), not weights"),
    (b"\x89HDF\r\n\x1a\n" + bytes(64), "an HDF5 file (Keras/TensorFlow weights)"),
    (None, "a zip archive that torch.save did not write, or a checkpoint cut short"),
])
def test_a_file_that_is_no_checkpoint_says_what_it_is(tmp_path, capsys, files, content, says):
    src = tmp_path / "weights.pth"
    if content is None:  # a real checkpoint, cut short as by a failed download
        whole = (files / "model.pth.tar").read_bytes()
        src.write_bytes(whole[: len(whole) // 3])
    else:
        src.write_bytes(content)
    rc = _import([src, "--format", "arnoweng", "--out", tmp_path / "m.onnx"])
    err = _one_line_error(capsys, rc, f"{src}: not a PyTorch checkpoint: {says}")
    assert not re.search(r"\(\d+\)|Error|enforce|miniz|0x", err), err  # no library internals
    assert "refused" not in err  # nothing unsafe was found: do not cry wolf


def test_import_help_offers_only_the_accepted_backbones(capsys):
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    text = capsys.readouterr().out
    assert "{densenet121,resnet101}" in text
    assert "vgg16," not in text
    assert "vgg16}" not in text
