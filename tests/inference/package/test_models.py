"""The user model registry, package verification before use, and the bundled sample study."""

from __future__ import annotations

import json
import os
from pathlib import Path

import onnx
import pytest
from onnx.external_data_helper import convert_model_to_external_data

from chexnet.inference.errors import ModelPackageError
from chexnet.inference.package import lookup as models
from chexnet.inference.package.hashing import file_sha256
from chexnet.inference.package.install import add_package, remove_package
from chexnet.inference.package.lookup import list_models, resolve_model, sample_study_path
from chexnet.inference.package.registry import REGISTRY_FILE, load_registry, user_models_dir
from chexnet.inference.package.verify import check_external_data
from chexnet.inference.scoring.engine import Engine
from tests.tiny_model import build_tiny_package, tiny_card


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path / "home"))
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    monkeypatch.setattr(models, "bundled_models_dir", lambda: bundled)
    return tmp_path / "home"


@pytest.fixture
def pkg(tmp_path: Path) -> Path:
    return build_tiny_package(tmp_path / "src" / "tiny.onnx")


def test_chexnet_home_moves_the_user_folder(home):
    assert user_models_dir() == home / "models"


def test_add_copies_and_records_the_package(home, pkg):
    entry = add_package(pkg, "mine")
    target = home / "models" / "mine.onnx"
    assert target.read_bytes() == pkg.read_bytes()
    doc = json.loads((home / "models" / REGISTRY_FILE).read_text())
    rec = doc["packages"]["mine"]
    assert rec["sha256"] == file_sha256(pkg) == entry.sha256
    assert (rec["card_name"], rec["version"], rec["demo"]) == ("tiny-test-model", "0.0.1", True)
    assert rec["registered"].endswith("+00:00")
    assert sorted(os.listdir(home / "models")) == ["mine.onnx", REGISTRY_FILE]  # no temp left
    assert resolve_model("mine").path == target
    assert Engine(resolve_model("mine"), device="cpu").card.name == "tiny-test-model"


def test_add_refuses_duplicates_bad_names_and_cardless_packages(home, pkg, tmp_path):
    add_package(pkg)
    with pytest.raises(ModelPackageError, match="already exists"):
        add_package(pkg)
    add_package(build_tiny_package(tmp_path / "other.onnx", seed=3), "tiny", force=True)
    assert load_registry()["tiny"].sha256 == file_sha256(tmp_path / "other.onnx")
    with pytest.raises(ModelPackageError, match="not a usable package name"):
        add_package(pkg, "../escape")
    bare = build_tiny_package(tmp_path / "bare.onnx", with_card=False)
    with pytest.raises(ModelPackageError, match="no model card"):
        add_package(bare)
    assert sorted(load_registry()) == ["tiny"]


def test_remove_forgets_and_deletes(home, pkg):
    add_package(pkg, "a")
    path = remove_package("a")
    assert not path.exists()
    assert load_registry() == {}
    with pytest.raises(ModelPackageError, match="no user model package named 'a'"):
        remove_package("a")


def test_resolution_order_path_then_user_then_bundled(home, pkg, tmp_path, monkeypatch):
    bundled = models.bundled_models_dir()
    build_tiny_package(bundled / "same.onnx", card=tiny_card(name="bundled-one"))
    build_tiny_package(bundled / "only-bundled.onnx")
    assert resolve_model("same").path == bundled / "same.onnx"
    add_package(pkg, "same")
    assert resolve_model("same").path == home / "models" / "same.onnx"  # user beats bundled
    assert resolve_model("only-bundled").path == bundled / "only-bundled.onnx"
    local = build_tiny_package(tmp_path / "cwd" / "same", seed=2)
    monkeypatch.chdir(local.parent)  # an existing file path beats every name
    assert resolve_model("same").path == Path("same")
    with pytest.raises(ModelPackageError, match="known names: only-bundled, same"):
        resolve_model("nope")


@pytest.mark.parametrize("how", ["append", "rebuild"])
def test_a_package_changed_since_registration_is_refused(home, pkg, how):
    target = add_package(pkg, "mine").path
    if how == "append":
        with open(target, "ab") as fh:
            fh.write(b"\0")
    else:
        build_tiny_package(target, seed=1)
    for spec in ("mine", str(target)):  # by name and by its path
        with pytest.raises(ModelPackageError, match="changed since it was registered") as info:
            resolve_model(spec)
        assert "re-register it with `chexnet models add PKG --name mine --force`" in str(info.value)
    (row,) = list_models()
    assert not row.ok
    assert "changed since it was registered" in row.problem
    if how == "rebuild":  # a wanted change is accepted by registering the file as it is now
        add_package(target, "mine", force=True)
        assert resolve_model("mine").path == target


def _external(pkg: Path, location: str) -> Path:
    """Point every initializer's external data at ``location`` (the file need not exist)."""
    model = onnx.load(str(pkg))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="x.bin",
                                   size_threshold=0)
    for tensor in model.graph.initializer:
        tensor.ClearField("raw_data")
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    out = pkg.with_name("external.onnx")
    out.write_bytes(model.SerializeToString())
    return out


@pytest.mark.parametrize("location", ["../evil.bin", "sub/../../evil.bin", "/etc/passwd",
                                      "..\\evil.bin", ""])
def test_external_data_outside_the_folder_is_refused(home, pkg, location):
    bad = _external(pkg, location)
    with pytest.raises(ModelPackageError, match="outside the package's folder"):
        resolve_model(str(bad))
    with pytest.raises(ModelPackageError, match="outside the package's folder"):
        add_package(bad)


def test_external_data_through_a_symlink_out_is_refused(home, pkg, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (pkg.parent / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ModelPackageError, match="outside the package's folder"):
        check_external_data(_external(pkg, "link/evil.bin"))


def test_external_data_inside_the_folder_is_accepted(home, pkg):
    model = onnx.load(str(pkg))
    out = pkg.with_name("split.onnx")
    onnx.save(model, str(out), save_as_external_data=True, location="split.data",
              size_threshold=100)  # fc weights out, shape constants in
    assert (pkg.parent / "split.data").is_file()
    assert Engine(resolve_model(str(out)), device="cpu").card.name == "tiny-test-model"


def test_listing_marks_broken_packages_instead_of_crashing(home, pkg, tmp_path):
    bundled = models.bundled_models_dir()
    build_tiny_package(bundled / "default.onnx", card=tiny_card(
        name="scored", demo=False, validation_metrics={"auroc": {"mean": 0.8412}}))
    add_package(pkg, "good")
    add_package(pkg, "gone")
    (home / "models" / "gone.onnx").unlink()
    (home / "models" / "junk.onnx").write_bytes(b"not an onnx file")
    build_tiny_package(home / "models" / "bare.onnx", with_card=False)
    rows = {r.name: r for r in list_models()}
    assert rows["default"].ok
    assert rows["default"].source == "bundled"
    assert rows["default"].auroc == pytest.approx(0.8412)
    assert rows["default"].demo is False
    assert rows["good"].ok
    assert rows["good"].auroc is None
    assert rows["good"].registered
    assert rows["good"].sha256 == file_sha256(pkg)
    assert "file is missing" in rows["gone"].problem
    assert "not a readable ONNX file" in rows["junk"].problem
    assert "no model card" in rows["bare"].problem
    assert rows["bare"].registered is None
    assert resolve_model(None).path == bundled / "default.onnx"


def test_a_corrupt_registry_is_reported(home, pkg):
    add_package(pkg)
    (home / "models" / REGISTRY_FILE).write_text("{not json")
    with pytest.raises(ModelPackageError, match="registry cannot be read"):
        resolve_model("tiny")
    rows = list_models()
    assert any(r.name == REGISTRY_FILE and not r.ok for r in rows)


def test_the_sample_study_is_bundled_with_its_license():
    path = sample_study_path()
    assert path.name == "RG1_J2KR.dcm"
    assert path.stat().st_size > 1_000_000
    assert path.read_bytes()[128:132] == b"DICM"
    assert "MIT License" in (path.parent / "LICENSE-pydicom-data.txt").read_text()
