"""TensorRT engine cache: where ONNX Runtime's TensorRT provider keeps the engines it builds.

Building a TensorRT engine for DenseNet-121 takes minutes; a cached one loads in seconds. An
engine is valid for one graph, one TensorRT version and one GPU model (compute capability), so the
folder is keyed by all three: ``<cache root>/tensorrt/<sha256[:16]>-trt<version>-<gpu>-sm<cc>``
(:func:`cache_key`). The cache root is ``$CHEXNET_HOME/cache`` when ``CHEXNET_HOME`` is set, else
the platform's per-user cache folder for chexnet (as the training image cache).

The first build is announced once ("building TensorRT engine, ~N s, cached in ..."), with N the
last build time recorded in ``builds.json`` beside the folders (a rough default before any):
:func:`build_notice` and :func:`built_notice` are pure, so the wording is tested without TensorRT.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
from pathlib import Path

import platformdirs

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.package.registry import HOME_ENV
from chexnet.inference.scoring.providers import TENSORRT_LIBRARIES, nvidia_smi

SUBDIR = "tensorrt"
BUILDS_FILE = "builds.json"
#: Announced build time before any build was recorded here (a guess, said as one: "~").
DEFAULT_BUILD_ESTIMATE_S = 120.0
ENGINE_SUFFIXES = (".engine",)


def cache_root() -> Path:
    env = os.environ.get(HOME_ENV)
    root = (Path(env).expanduser() / "cache" if env
            else Path(platformdirs.user_cache_dir("chexnet", appauthor=False)))
    return root / SUBDIR


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "unknown"


def cache_key(sha256: str, trt_version: str | None, gpu_name: str | None,
              compute_capability: str | None) -> str:
    """The folder name for one package on one TensorRT version and GPU model."""
    if not re.fullmatch(r"[0-9a-f]{16,64}", sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r:.80}")
    cc = (compute_capability or "unknown").replace(".", "")
    return (f"{sha256[:16]}-trt{_slug(trt_version or 'unknown')}-{_slug(gpu_name or 'unknown')}"
            f"-sm{_slug(cc)}")


def cache_dir(sha256: str, trt_version: str | None, gpu_name: str | None,
              compute_capability: str | None, root: Path | None = None) -> Path:
    return (root or cache_root()) / cache_key(sha256, trt_version, gpu_name, compute_capability)


def has_engine(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix in ENGINE_SUFFIXES for p in folder.iterdir())


def build_estimate(root: Path) -> float:
    """The last recorded build time under ``root``, else :data:`DEFAULT_BUILD_ESTIMATE_S`."""
    try:
        builds = json.loads((root / BUILDS_FILE).read_text())
        return float(builds["last_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_BUILD_ESTIMATE_S


def record_build(root: Path, key: str, seconds: float) -> None:
    path = root / BUILDS_FILE
    try:
        builds = json.loads(path.read_text())
        builds = builds if isinstance(builds, dict) else {}
    except (OSError, ValueError):
        builds = {}
    builds.setdefault("by_key", {})[key] = round(seconds, 1)
    builds["last_s"] = round(seconds, 1)
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(builds, indent=1, sort_keys=True))


def build_notice(folder: Path, estimate_s: float) -> str | None:
    """The one line said before a session build, or None when an engine is cached already."""
    if has_engine(folder):
        return None
    return f"building TensorRT engine, ~{estimate_s:.0f} s, cached in {folder} (once)"


def built_notice(folder: Path, seconds: float) -> str:
    return f"TensorRT engine built in {seconds:.0f} s; cached in {folder}"


def decode_trt_version(number: int) -> str:
    """``getInferLibVersion()``'s integer -> "major.minor.patch" (TensorRT 10 counts
    major*10000 + minor*100 + patch; earlier releases major*1000 + minor*100 + patch)."""
    if number >= 100000:
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    return f"{number // 1000}.{number // 100 % 10}.{number % 100}"


def tensorrt_version() -> str | None:
    """The TensorRT runtime's version, or None without one."""
    for name in TENSORRT_LIBRARIES:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        return decode_trt_version(int(lib.getInferLibVersion()))
    return None


def parse_gpu_query(text: str) -> tuple[str, str] | None:
    """First row of ``nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader``."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    name, _, cc = first.rpartition(",")
    return (name.strip(), cc.strip()) if name.strip() and cc.strip() else None


def gpu_identity(device_id: int = 0) -> tuple[str, str] | None:
    """(GPU name, compute capability) from ``nvidia-smi``, or None without one."""
    text = nvidia_smi("name,compute_cap", device_id)
    return None if text is None else parse_gpu_query(text)


def this_machine_cache_dir(sha256: str, device_id: int = 0) -> Path:
    """The cache folder for ``sha256`` on this machine's TensorRT and GPU."""
    name, cc = gpu_identity(device_id) or (None, None)
    return cache_dir(sha256, tensorrt_version(), name, cc)
