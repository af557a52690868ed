"""`chexnet models` and `chexnet predict --sample` as a user runs them (CHEXNET_HOME in tmp)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chexnet.inference.cli.main import main
from tests.tiny_model import build_tiny_package, tiny_card


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_add_list_remove_round_trip(home, tmp_path, capsys):
    tiny = build_tiny_package(tmp_path / "tiny.onnx")
    scored = build_tiny_package(tmp_path / "scored.onnx", seed=1, card=tiny_card(
        name="scored-model", version="1.2", demo=False,
        validation_metrics={"auroc": {"mean": 0.8412}}))
    assert main(["models", "add", str(tiny)]) == 0
    assert "added tiny: tiny-test-model 0.0.1 (DEMO)" in capsys.readouterr().out
    assert main(["models", "add", str(scored), "--name", "scored"]) == 0
    assert "use it with --model scored" in capsys.readouterr().out

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "CARD", "VERSION", "SHA256", "DEMO", "AUROC",
                                "PATH"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows["scored"][1:7] == ["user", "scored-model", "1.2", rows["scored"][4], "no",
                                   "0.841"]
    assert rows["tiny"][2:4] == ["tiny-test-model", "0.0.1"]
    assert rows["tiny"][5:7] == ["yes", "-"]
    assert len(rows["tiny"][4]) == 12
    assert rows["tiny"][7] == str(home / "models" / "tiny.onnx")
    assert "broken" not in out

    for argv in (["models", "--json"], ["models", "list", "--json"]):
        assert main(argv) == 0
        doc = _json(capsys)
        assert doc["user_models_dir"] == str(home / "models")
        by = {m["name"]: m for m in doc["models"] if m["source"] == "user"}
        assert set(by) == {"scored", "tiny"}
        assert by["scored"]["auroc"] == pytest.approx(0.8412)
        assert by["scored"]["demo"] is False
        assert len(by["tiny"]["sha256"]) == 64
        assert by["tiny"]["ok"]
        assert by["tiny"]["registered"]

    assert main(["models", "remove", "tiny"]) == 0
    assert "removed tiny" in capsys.readouterr().out
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "scored" in out
    assert "tiny-test-model" not in out
    assert main(["models", "remove", "tiny"]) == 2
    assert "no user model package named 'tiny'" in capsys.readouterr().err


def test_predict_sample_with_a_registered_name(home, tmp_path, capsys):
    assert main(["models", "add", str(build_tiny_package(tmp_path / "t.onnx")),
                 "--name", "my-tiny"]) == 0
    capsys.readouterr()
    assert main(["predict", "--sample", "--model", "my-tiny"]) == 0
    out = capsys.readouterr().out
    assert "tiny-test-model" in out
    assert "RG1_J2KR.dcm  [CR PA CHEST 1841x1955]  analysed" in out
    assert "1 analysed, 0 not analysed, 0 unreadable" in out


def test_predict_sample_json_with_a_path(tiny_model, capsys):
    assert main(["predict", "--sample", "--json", "--model", str(tiny_model)]) == 0
    (result,) = _json(capsys)["results"]
    assert result["path"].endswith("RG1_J2KR.dcm")
    assert result["status"] == "analysed_with_warnings"  # the tiny package has no OOD check


def test_predict_needs_inputs_or_sample(tiny_model, capsys):
    assert main(["predict", "--model", str(tiny_model)]) == 2
    assert "--sample" in capsys.readouterr().err


def test_a_package_changed_after_registration_is_refused(home, tmp_path, capsys):
    assert main(["models", "add", str(build_tiny_package(tmp_path / "t.onnx"))]) == 0
    build_tiny_package(home / "models" / "t.onnx", seed=7)  # swapped in place
    capsys.readouterr()
    assert main(["predict", "--sample", "--model", "t"]) == 2
    err = capsys.readouterr().err
    assert "changed since it was registered" in err
    assert "re-register it with `chexnet models add" in err
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "user BROKEN" in out
    assert "broken: t (user): package 't' changed since" in out


def test_external_data_outside_the_folder_is_refused(home, tmp_path, capsys):
    import onnx

    pkg = build_tiny_package(tmp_path / "pkg" / "evil.onnx")
    (tmp_path / "evil.bin").write_bytes(b"\0" * 4096)
    model = onnx.load(str(pkg))
    for tensor in model.graph.initializer:
        if tensor.name == "fc_w":
            tensor.data_location = onnx.TensorProto.EXTERNAL
            tensor.ClearField("raw_data")
            for key, value in (("location", "../evil.bin"), ("offset", "0"), ("length", "448")):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
    pkg.write_bytes(model.SerializeToString())
    assert main(["predict", "--sample", "--model", str(pkg)]) == 2
    assert "'../evil.bin', outside the package's folder" in capsys.readouterr().err
    assert main(["models", "add", str(pkg)]) == 2
    assert "outside the package's folder" in capsys.readouterr().err
    assert not (home / "models" / "evil.onnx").exists()


def test_a_broken_file_in_the_user_folder_is_listed_not_fatal(home, tmp_path, capsys):
    assert main(["models", "add", str(build_tiny_package(tmp_path / "good.onnx"))]) == 0
    (home / "models" / "junk.onnx").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^junk\s+user BROKEN", out, re.MULTILINE)
    assert "broken: junk (user): it is not a readable ONNX" in out
    assert main(["models", "--json"]) == 0
    by = {m["name"]: m for m in _json(capsys)["models"]}
    assert by["good"]["ok"]
    assert not by["junk"]["ok"]
    assert "not a readable ONNX file" in by["junk"]["problem"]
    assert main(["predict", "--sample", "--model", "junk"]) == 2
