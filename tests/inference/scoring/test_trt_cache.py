"""The TensorRT engine cache: keys, folders, the one-time build notice (no TensorRT needed)."""

from __future__ import annotations

import pytest

from chexnet.inference.scoring import providers, trt_cache
from chexnet.inference.scoring.trt_cache import (
    DEFAULT_BUILD_ESTIMATE_S,
    build_estimate,
    build_notice,
    built_notice,
    cache_dir,
    cache_key,
    decode_trt_version,
    has_engine,
    parse_gpu_query,
    record_build,
)

SHA = "ab" * 32


def test_key_changes_with_package_tensorrt_and_gpu():
    base = cache_key(SHA, "10.3.0", "NVIDIA H200", "9.0")
    assert base == "abababababababab-trt10.3.0-nvidia-h200-sm90"
    others = {cache_key("cd" * 32, "10.3.0", "NVIDIA H200", "9.0"),
              cache_key(SHA, "10.4.0", "NVIDIA H200", "9.0"),
              cache_key(SHA, "10.3.0", "NVIDIA GeForce RTX 4090", "8.9"),
              cache_key(SHA, "10.3.0", "NVIDIA H200", "8.9")}
    assert base not in others
    assert len(others) == 4
    assert cache_key(SHA, None, None, None) == "abababababababab-trtunknown-unknown-smunknown"
    with pytest.raises(ValueError, match="sha256"):
        cache_key("../../etc", "10", "x", "9.0")


def test_folder_under_chexnet_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path))
    folder = cache_dir(SHA, "10.3.0", "NVIDIA H200", "9.0")
    assert folder == tmp_path / "cache" / "tensorrt" / "abababababababab-trt10.3.0-nvidia-h200-sm90"


def test_build_notice_once_then_silent(tmp_path):
    root = tmp_path / "tensorrt"
    folder = root / cache_key(SHA, "10.3.0", "H200", "9.0")
    assert build_estimate(root) == DEFAULT_BUILD_ESTIMATE_S
    first = build_notice(folder, build_estimate(root))
    assert first == (f"building TensorRT engine, ~{DEFAULT_BUILD_ESTIMATE_S:.0f} s, cached in "
                     f"{folder} (once)")
    folder.mkdir(parents=True)
    (folder / "TensorrtExecutionProvider_TRTKernel_graph_1_0_sm90.profile").write_bytes(b"")
    assert not has_engine(folder)  # a profile is not an engine
    (folder / "TensorrtExecutionProvider_TRTKernel_graph_1_0_sm90.engine").write_bytes(b"x")
    assert build_notice(folder, 10) is None
    record_build(root, folder.name, 83.4)
    assert build_estimate(root) == 83.4  # the next package's notice says what this one took
    assert "~83 s" in build_notice(root / "other", build_estimate(root))
    assert built_notice(folder, 83.4) == f"TensorRT engine built in 83 s; cached in {folder}"


def test_version_and_gpu_probes():
    assert decode_trt_version(100300) == "10.3.0"
    assert decode_trt_version(8601) == "8.6.1"
    assert parse_gpu_query("NVIDIA H200, 9.0\nNVIDIA H200, 9.0\n") == ("NVIDIA H200", "9.0")
    assert parse_gpu_query("") is None


def test_no_tensorrt_or_gpu_here_gives_unknown_parts(monkeypatch, tmp_path):
    monkeypatch.setattr(providers.shutil, "which", lambda name: None)
    assert trt_cache.gpu_identity() is None
    monkeypatch.setenv("CHEXNET_HOME", str(tmp_path))
    monkeypatch.setattr(trt_cache, "tensorrt_version", lambda: None)
    assert trt_cache.this_machine_cache_dir(SHA).name.endswith("-trtunknown-unknown-smunknown")
