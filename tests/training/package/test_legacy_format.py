"""torch's legacy (pre-1.6) checkpoint format: the release files of 2017-2020 import as they
are (whole pickled models included), read by chexnet's restricted unpickler; hostile files in
that format are refused and nothing they name ever runs."""

from __future__ import annotations

import io
import math
import os
import pickle
import subprocess
import sys
import uuid

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")
pytest.importorskip("torchvision", reason="training extra not installed")

from chexnet.inference import CHESTXRAY14_LABELS  # noqa: E402
from chexnet.inference.cli.main import main  # noqa: E402
from chexnet.training.package.importers import ImportOptions, convert  # noqa: E402
from chexnet.training.package.legacy_pickle import (  # noqa: E402
    LEGACY_MAGIC,
    LegacyFormatError,
    ModuleStub,
    UnsafeCheckpointError,
    load_legacy,
)
from chexnet.training.package.safe_load import ImportFormatError  # noqa: E402
from chexnet.training.package.sources.xrv_releases import RELEASES  # noqa: E402
from tests.training.package.source_models import (  # noqa: E402
    arnoweng_checkpoint,
    chexnet_densenet,
    save_legacy,
    save_reproduce_2018,
    save_xrv_release,
    spread_outputs,
    xrv_densenet,
)

NIH = RELEASES["densenet121-res224-nih"]


def _x(channels: int, seed: int, scale: float = 1.0, n: int = 1) -> torch.Tensor:
    """Small inputs (64 px: a 2 x 2 feature map): conversion checks, fast on shared cores."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, channels, 64, 64, generator=g) * scale


@pytest.fixture(scope="module")
def chexnet_net():
    net = chexnet_densenet(0)
    return spread_outputs(net, net.classifier[0], _x(3, 9, n=4))


@pytest.fixture(scope="module")
def xrv_net():
    net = xrv_densenet(1, NIH.labels)
    return spread_outputs(net, net.classifier, _x(1, 9, scale=300.0, n=4))


def test_legacy_state_dict_loads_exactly(tmp_path, chexnet_net):
    path = save_legacy(arnoweng_checkpoint(chexnet_net), tmp_path / "model.pth.tar")
    assert path.read_bytes()[:2] == b"\x80\x02"  # a pickle stream, not a zip archive
    got = load_legacy(path)
    want = arnoweng_checkpoint(chexnet_net)
    assert got["epoch"] == 5
    assert got["optimizer"] == want["optimizer"]
    assert set(got["state_dict"]) == set(want["state_dict"])
    for key, value in want["state_dict"].items():
        assert got["state_dict"][key].dtype == value.dtype
        assert torch.equal(got["state_dict"][key], value), key
    model, card = convert(path, ImportOptions(fmt="arnoweng"))
    x = _x(3, 1)
    with torch.no_grad():
        assert torch.allclose(model.probs_and_cams(x)[0], chexnet_net(x), atol=1e-6)
    assert card.tta == "ten-crop"


def test_reproduce_chexnet_2018_checkpoint_imports_as_it_is(tmp_path, chexnet_net):
    path = save_reproduce_2018(chexnet_net, tmp_path / "checkpoint")
    data = path.read_bytes()
    assert b"_get_thnn_function_backend" in data  # what made torch refuse the 2018 file
    assert b"class DenseNet" in data  # the per-class module records carry source
    model, card = convert(path, ImportOptions(fmt="reproduce-chexnet"))
    x = _x(3, 2)
    with torch.no_grad():
        assert torch.allclose(model.probs_and_cams(x)[0], chexnet_net(x), atol=1e-6)
    assert card.labels == CHESTXRAY14_LABELS
    assert card.tta == "none"
    assert (card.preprocess.resize, card.preprocess.size) == (224, 224)


def test_xrv_release_file_imports_with_no_flags(tmp_path, xrv_net):
    path = save_xrv_release(xrv_net, tmp_path / NIH.file)
    data = path.read_bytes()
    assert b"torchxrayvision.models" in data
    assert b"op_threshs" in data  # the buffer's name, with no tensor: as in the releases
    obj = load_legacy(path)
    assert isinstance(obj, ModuleStub)
    assert type(obj).source_class == "torchxrayvision.models.DenseNet"
    assert obj.__dict__["_buffers"]["op_threshs"] is None
    model, card = convert(path, ImportOptions(fmt="torchxrayvision"))
    x = _x(1, 3, scale=300.0)
    with torch.no_grad():
        assert torch.allclose(model.probs_and_cams(x)[0], xrv_net(x)[:, :14], atol=1e-6)
    assert card.labels == NIH.labels[:14]
    assert set(card.labels) == set(CHESTXRAY14_LABELS)  # ChestX-ray14's own names
    assert card.thresholds == pytest.approx(dict(zip(NIH.labels[:14], NIH.op_threshs[:14],
                                                     strict=True)))
    assert "published op_threshs of densenet121-res224-nih" in card.threshold_rule
    assert card.extra["xrv_weights"] == "densenet121-res224-nih"
    spec = card.preprocess
    assert (spec.crop, spec.interpolation, spec.channels) == (
        "centre-square", "skimage-antialias", 1)
    assert card.tta == "none"


def test_xrv_variant_picks_labels_and_thresholds(tmp_path, xrv_net, capsys):
    path = save_xrv_release(xrv_net, tmp_path / "weights.pt")  # a name that says nothing
    with pytest.raises(ImportFormatError, match="--variant"):
        convert(path, ImportOptions(fmt="torchxrayvision"))
    chex = RELEASES["densenet121-res224-chex"]
    _model, card = convert(path, ImportOptions(fmt="torchxrayvision", variant=chex.weights))
    trained = [i for i, op in enumerate(chex.op_threshs) if not math.isnan(op)]
    assert card.labels == tuple(chex.labels[i] for i in trained)
    assert "Infiltration" not in card.labels  # CheXpert has no such label: dropped
    assert card.thresholds["Fracture"] == pytest.approx(chex.op_threshs[15])
    _model, card = convert(path, ImportOptions(fmt="torchxrayvision", variant="all"))  # alias
    assert len(card.labels) == 18  # every output trained; the last four keep xrv's names
    assert card.labels[14:] == ("Lung Lesion", "Fracture", "Lung Opacity",
                                "Enlarged Cardiomediastinum")
    _model, card = convert(path, ImportOptions(fmt="torchxrayvision",
                                               variant="densenet121-res224-rsna"))
    assert card.labels == ("Pneumonia", "Lung Opacity")
    assert card.thresholds == pytest.approx({"Pneumonia": 0.13486601,
                                             "Lung Opacity": 0.13511065})
    with pytest.raises(ImportFormatError, match="densenet121-res224-nih"):  # choices listed
        convert(path, ImportOptions(fmt="torchxrayvision", variant="nope"))
    with pytest.raises(SystemExit):
        main(["import", str(path), "--format", "torchxrayvision", "--variant", "nope",
              "--out", str(tmp_path / "m.onnx")])
    assert "densenet121-res224-nih" in capsys.readouterr().err


def test_wrong_output_count_without_labels_does_not_blame_labels(tmp_path):
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.densenet121(weights=None, num_classes=13)
    path = save_legacy({"state_dict": net.state_dict()}, tmp_path / "model.pth.tar")
    with pytest.raises(ImportFormatError) as err:
        convert(path, ImportOptions(fmt="arnoweng"))
    assert "13 outputs" in str(err.value)
    assert "were given" not in str(err.value)
    assert "--labels" in str(err.value)


def test_png_given_as_a_checkpoint_is_not_called_unsafe(tmp_path, nih_png, capsys):
    rc = main(["import", str(nih_png), "--format", "torchxrayvision", "--variant",
               "densenet121-res224-nih", "--out", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "not a PyTorch checkpoint: a PNG image" in err
    assert "refused" not in err


def test_cut_short_and_oversized_legacy_files_are_named_not_crashed(tmp_path, chexnet_net):
    whole = save_legacy(chexnet_net.state_dict(), tmp_path / "w.pt").read_bytes()
    short = tmp_path / "short.pt"
    short.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(LegacyFormatError, match="cut short"):
        load_legacy(short)
    # a storage record claiming far more elements than the file holds: refused before allocating
    huge = tmp_path / "huge.pt"
    buf = io.BytesIO()
    for head in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(head, buf, protocol=2)

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 10**12, None) if obj is buf \
                else None

    P(buf, protocol=2).dump({"w": buf})
    huge.write_bytes(buf.getvalue())
    with pytest.raises(LegacyFormatError, match="larger than the file"):
        load_legacy(huge)
    with pytest.raises(ImportFormatError, match="not a PyTorch checkpoint"):
        convert(huge, ImportOptions(fmt="arnoweng"))


def test_zero_stride_tensor_bomb_is_refused(tmp_path):
    """A 10^12-element view of a 1-element storage (stride 0): any copy would exhaust memory."""
    storage = object()

    class Bomb:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (storage, 0, (10**6, 10**6), (0, 0), False, {}))

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", 1, None) if obj is storage \
                else None

    buf = io.BytesIO()
    for head in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(head, buf, protocol=2)
    P(buf, protocol=2).dump({"w": Bomb()})
    pickle.dump(["0"], buf, protocol=2)
    buf.write((1).to_bytes(8, "little") + bytes(4))
    path = tmp_path / "bomb.pt"
    path.write_bytes(buf.getvalue())
    with pytest.raises(LegacyFormatError, match="larger than its storage"):
        load_legacy(path)


def _legacy_file(path, body: bytes, storages: dict[str, int]):
    """A legacy container around a hand-written main pickle ``body``; float32 storages of the
    given element counts, zero-filled."""
    buf = io.BytesIO()
    for head in (LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(head, buf, protocol=2)
    buf.write(body)
    pickle.dump(sorted(storages), buf, protocol=2)
    for key in sorted(storages):
        buf.write(storages[key].to_bytes(8, "little") + bytes(4 * storages[key]))
    path.write_bytes(buf.getvalue())
    return path


def _peak_rss_mib(path) -> float:
    """Peak resident memory (MiB, over its baseline) of a fresh interpreter loading ``path``
    (a refusal expected)."""
    probe = ("import resource, torch\n"
             "from chexnet.training.package.legacy_pickle import LegacyFormatError, load_legacy\n"
             "r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             f"try:\n    load_legacy({str(path)!r})\nexcept LegacyFormatError:\n    pass\n"
             "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, check=True)
    return float(out.stdout.split()[-1])


def test_memo_index_bomb_is_refused_before_allocating(tmp_path):
    """One LONG_BINPUT index of 2^27 in a ~60-byte file: CPython's unpickler would allocate and
    clear a memo of 2^28 slots (2 GiB; 2^30 would be 16 GiB)."""
    path = _legacy_file(tmp_path / "memo.pt", b"\x80\x02Nr\x00\x00\x00\x08.", {})
    with pytest.raises(LegacyFormatError, match="memo index"):
        load_legacy(path)
    grew = _peak_rss_mib(path)
    assert grew < 100, f"loading a {path.stat().st_size}-byte file took {grew:.0f} MiB"


def _ints(values: tuple) -> bytes:
    """Protocol-2 opcodes for a tuple of ints."""
    return b"(" + b"".join(b"J" + v.to_bytes(4, "little") for v in values) + b"t"


def _tensor_op(n: int, size: tuple, stride: tuple) -> bytes:
    """Protocol-2 opcodes for _rebuild_tensor_v2 of storage "0" (n floats)."""
    pid = (b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00"
           b"\x00\x00cpu" + b"J" + n.to_bytes(4, "little") + b"Nt" + b"Q")
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid + b"K\x00" + _ints(size)
            + _ints(stride) + b"\x89}tR")


def test_tensor_methods_are_not_reachable_from_opcodes(tmp_path):
    """ADDITEMS on a tensor calls its ``.add``: an [n, 1] view plus a [1, n] view of one
    n-element storage would allocate n^2 elements (16 GiB for a 256 KiB file at n = 65536);
    BUILD on a tensor calls its ``__setstate__`` (``set_``). Tensors do not exist while
    unpickling, so both are refused, allocating nothing."""
    n = 16384  # n^2 float32 = 1 GiB if .add ran
    add = b"\x80\x02" + _tensor_op(n, (n, 1), (1, 0)) + b"(" + _tensor_op(n, (1, n), (0, 1)) \
        + b"\x90."
    path = _legacy_file(tmp_path / "add.pt", add, {"0": n})
    with pytest.raises(LegacyFormatError):
        load_legacy(path)
    grew = _peak_rss_mib(path)
    assert grew < 200, f"loading a {path.stat().st_size}-byte file took {grew:.0f} MiB"
    # BUILD with a 4-tuple state: Tensor.__setstate__ would set_() a 10^12-element view
    build = (b"\x80\x02" + _tensor_op(1, (1,), (1,)) + b"(" + _tensor_op(1, (1,), (1,))
             + b"K\x00" + _ints((10**6, 10**6)) + _ints((0, 0)) + b"tb.")
    with pytest.raises(LegacyFormatError):
        load_legacy(_legacy_file(tmp_path / "build.pt", build, {"0": 1}))


def test_views_of_views_and_shared_tensors_load_as_torch_wrote_them(tmp_path):
    """The same tensor under two names stays one tensor; a state dict keeps its _metadata."""
    w = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = torch.nn.Linear(4, 3).state_dict()
    sd["weight"].copy_(w)
    obj = {"a": sd, "b": [sd["weight"], (sd["weight"][1:, ::2], 5)], "s": {"x"}}
    got = load_legacy(save_legacy(obj, tmp_path / "v.pt"))
    assert got["b"][0] is got["a"]["weight"]
    assert torch.equal(got["b"][1][0], w[1:, ::2])
    assert got["b"][1][1] == 5
    assert hasattr(got["a"], "_metadata")
    assert got["s"] == {"x"}


@pytest.mark.parametrize("state", [
    b"X\x0b\x00\x00\x00_parameters}X\x01\x00\x00\x00wK\x05su",  # a parameter that is an int
    b"X\x08\x00\x00\x00_modules}X\x01\x00\x00\x00ch\x00su",  # a layer that contains itself
    b"X\x08\x00\x00\x00_modulesX\x01\x00\x00\x00zu",  # _modules that is a string
], ids=["int-parameter", "cycle", "string-modules"])
def test_hand_made_whole_model_is_a_named_error_not_a_crash(tmp_path, capsys, state):
    """A whole pickled model whose layer dicts hold what torch never writes: every format says
    what is wrong with the file (exit 2) instead of an AttributeError or RecursionError."""
    body = (b"\x80\x02ctorchvision.models.densenet\nDenseNet\n)\x81q\x00}(" + state + b"b.")
    path = _legacy_file(tmp_path / NIH.file, body, {})
    for fmt in ("reproduce-chexnet", "arnoweng", "torchxrayvision"):
        assert main(["import", str(path), "--format", fmt, "--out",
                     str(tmp_path / "x.onnx")]) == 2, fmt
        err = capsys.readouterr().err
        assert "chexnet import: error:" in err, (fmt, err)
        assert "Traceback" not in err


# --- hostile files in the legacy format ---------------------------------------------------------

class _Reduce:
    def __init__(self, fn, args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _payloads(marker: str) -> dict[str, object]:
    return {
        "os.system": _Reduce(os.system, (f"touch {marker}",)),
        "subprocess": _Reduce(subprocess.call, (["touch", marker],)),
        "eval": _Reduce(eval, (f"open({marker!r}, 'w')",)),
        "exec-in-tuple": (1, _Reduce(exec, (f"open({marker!r}, 'w')",))),
    }


@pytest.mark.parametrize("payload", ["os.system", "subprocess", "eval", "exec-in-tuple"])
@pytest.mark.parametrize("where", ["alone", "beside-a-whole-model", "in-a-state-dict"])
def test_hostile_legacy_file_is_refused_and_never_runs(tmp_path, payload, where):
    marker = f"/tmp/PWNED_{uuid.uuid4().hex}"
    evil = _payloads(marker)[payload]
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    obj = {"alone": evil, "beside-a-whole-model": {"model": model, "extra": evil},
           "in-a-state-dict": {"state_dict": {"w": torch.ones(2), "hook": evil}}}[where]
    path = save_legacy(obj, tmp_path / f"{NIH.file}")  # named as a release: no --variant needed
    assert not os.path.exists(marker)  # saving ran nothing
    for fmt in ("arnoweng", "reproduce-chexnet", "torchxrayvision"):
        with pytest.raises(UnsafeCheckpointError, match="refused") as err:
            convert(path, ImportOptions(fmt=fmt))
        assert "arbitrary code" in str(err.value)
    assert not os.path.exists(marker)


def test_hostile_protocol_0_and_module_record_tricks(tmp_path, capsys):
    """Hand-written legacy containers: a protocol-0 GLOBAL+REDUCE, an INST opcode, and a
    "module" record whose class is a shell call."""
    marker = f"/tmp/PWNED_{uuid.uuid4().hex}"
    head = b"".join(pickle.dumps(h, protocol=2)
                    for h in (LEGACY_MAGIC, 1001, {"little_endian": True}))
    bodies = {
        "reduce": f"cos\nsystem\n(Vtouch {marker}\ntR.".encode(),
        "inst": f"(Vtouch {marker}\nios\nsystem\n.".encode(),
        "module-record": (b"\x80\x02(X\x06\x00\x00\x00modulecposix\nsystem\nX\x01\x00\x00\x00f"
                          b"X\x01\x00\x00\x00st" + b"Q)\x81."),
        "builtins-getattr": b"cbuiltins\ngetattr\n(cos\nsystem\nVx\ntR.",
    }
    for name, body in bodies.items():
        path = tmp_path / f"{name}.pt"
        path.write_bytes(head + body)
        rc = main(["import", str(path), "--format", "reproduce-chexnet",
                   "--out", str(tmp_path / "x.onnx")])
        err = capsys.readouterr().err
        assert rc == 2, name
        assert "refused" in err, (name, err)
        assert ("system" in err or "getattr" in err), (name, err)
    assert not os.path.exists(marker)
    assert not (tmp_path / "x.onnx").exists()


def test_loader_imports_nothing_the_file_names(tmp_path, xrv_net):
    """Loading a release names torchxrayvision's classes but never imports a module."""
    path = save_xrv_release(xrv_net, tmp_path / NIH.file)
    before = set(sys.modules)
    obj = load_legacy(path)
    assert not {m for m in set(sys.modules) - before if "torchxrayvision" in m}
    assert type(obj).__mro__[1] is ModuleStub
    assert np.isfinite(obj.__dict__["_modules"]["classifier"].__dict__["_parameters"][
        "weight"].numpy()).all()
