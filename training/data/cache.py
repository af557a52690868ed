"""A one-time preprocessed image cache: uint8 crops at the model's working size, memory-mapped.

Decoding a 1024x1024 PNG and resizing it costs far more than a training step's data needs, and it
is the same every epoch. The cache runs the inference room's own deterministic preprocessing
(:func:`chexnet.inference.preprocessing.resize_and_crop` of :meth:`Image.display_u8`) once per image
and stores the result in ``<cache>/<key>.u8`` (N x S x S uint8). The key is the sha256 of a
manifest listing every source file (path, size, mtime) and the preprocessing parameters, so a
changed file or setting builds a new cache instead of silently reusing a stale one, and caches of
different data sets share one folder.

The folder (:func:`default_cache_dir`) is the user's cache folder, never the data folder:
``platformdirs.user_cache_dir("chexnet")/training-images``, or ``$CHEXNET_HOME/cache/
training-images`` when ``CHEXNET_HOME`` is set (as for the model registry). A cache built in the
data folder's ``.chexnet-cache`` (the old default) is reused from there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
from tqdm import tqdm

from chexnet.inference.atomic_file import write_atomic
from chexnet.inference.errors import ChexnetInputError
from chexnet.inference.io.study import load_image
from chexnet.inference.package.registry import HOME_ENV
from chexnet.inference.preprocessing import PreprocessSpec, resize_and_crop

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
#: The cache's folder inside the user's chexnet cache folder.
CACHE_SUBDIR = "training-images"
#: Where chexnet-train put the cache before it moved to the user's cache folder.
LEGACY_CACHE_NAME = ".chexnet-cache"


def default_cache_dir() -> Path:
    """``$CHEXNET_HOME/cache/training-images`` when ``CHEXNET_HOME`` is set, else
    ``training-images`` in the platform's per-user cache folder for chexnet."""
    env = os.environ.get(HOME_ENV)
    root = (Path(env).expanduser() / "cache" if env
            else Path(platformdirs.user_cache_dir("chexnet", appauthor=False)))
    return root / CACHE_SUBDIR


def legacy_cache_dir(data: Path) -> Path:
    """The old default: ``.chexnet-cache`` in the data folder (or beside the label CSV)."""
    return (data if data.is_dir() else data.parent) / LEGACY_CACHE_NAME


class CacheError(RuntimeError):
    """Too many images could not be read to build a trustworthy cache."""


@dataclass(frozen=True)
class ImageCache:
    """Memory-mapped crops; ``failed`` lists rows whose source could not be read (all zeros)."""

    path: Path
    array: np.ndarray  # uint8 memmap [N, S, S]
    failed: tuple[int, ...]
    built: bool = False  # built by this call (else an existing cache was opened)


def manifest_key(paths: list[Path], spec: PreprocessSpec) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": CACHE_FORMAT, "size": spec.size, "resize": spec.resize,
                         "interpolation": spec.interpolation}).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{Path(p).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def _crop_one(args: tuple[str, int, int, str]) -> tuple[np.ndarray | None, str | None]:
    path, size, resize, interpolation = args
    spec = PreprocessSpec(size=size, resize=resize, channels=1, mean=(0.0,), std=(1.0,),
                          interpolation=interpolation)
    try:
        crop, _ = resize_and_crop(load_image(path).display_u8(), spec)
        return crop, None
    except ChexnetInputError as err:
        return None, str(err)
    except Exception as err:  # one odd file must not kill the pool and the whole cache build
        return None, f"{path}: could not be read ({type(err).__name__}: {err})"


def build_cache(paths: list[Path], spec: PreprocessSpec, cache_dir: Path, *, workers: int = 0,
                max_failed_fraction: float = 0.01, report_dir: Path | None = None,
                reuse_from: tuple[Path, ...] = ()) -> ImageCache:
    """Open the cache for ``paths`` (building it in ``cache_dir`` on first use) and return it
    memory-mapped. A complete cache of the same key in ``cache_dir`` or, failing that, in one of
    ``reuse_from`` is opened where it is."""
    key = manifest_key(paths, spec)
    shape = (len(paths), spec.size, spec.size)
    for folder in (cache_dir, *reuse_from):
        if (folder / f"{key}.json").is_file():
            meta = json.loads((folder / f"{key}.json").read_text())
            data_path = folder / f"{key}.u8"
            return ImageCache(data_path, np.memmap(data_path, np.uint8, "r", shape=shape),
                              tuple(meta["failed"]))
    cache_dir.mkdir(parents=True, exist_ok=True)
    data_path, meta_path = cache_dir / f"{key}.u8", cache_dir / f"{key}.json"
    # Filled in place through a memory map (too large to assemble in memory for the atomic
    # writer), so it is renamed into place itself; the .json written last marks it complete.
    tmp = data_path.with_suffix(".part")
    array = np.memmap(tmp, np.uint8, "w+", shape=shape)
    jobs = [(str(p), spec.size, spec.resize, spec.interpolation) for p in paths]
    failed: list[int] = []
    errors: list[str] = []
    desc = f"caching {len(paths)} images at {spec.size}px"
    if workers > 0:
        with ProcessPoolExecutor(workers) as pool:
            results = pool.map(_crop_one, jobs, chunksize=16)
            _fill(array, results, failed, errors, desc, len(jobs))
    else:
        _fill(array, map(_crop_one, jobs), failed, errors, desc, len(jobs))
    array.flush()
    del array
    if failed:
        if report_dir is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            (report_dir / "unreadable_images.txt").write_text("\n".join(errors) + "\n")
        if len(failed) > max(1, int(max_failed_fraction * len(paths))):
            tmp.unlink(missing_ok=True)
            raise CacheError(f"{len(failed)} of {len(paths)} images could not be read (first: "
                             f"{errors[0]}); fix or remove them from the label file")
        log.warning("%d unreadable image(s) excluded from training (list: "
                    "unreadable_images.txt)", len(failed))
    tmp.replace(data_path)
    write_atomic(meta_path, json.dumps({"format": CACHE_FORMAT, "n": len(paths),
                                        "failed": failed, "spec": spec.to_dict()}))
    return ImageCache(data_path, np.memmap(data_path, np.uint8, "r", shape=shape), tuple(failed),
                      built=True)


def _fill(array: np.ndarray, results, failed: list[int], errors: list[str], desc: str,
          total: int) -> None:
    # disable=None: a bar on a terminal, nothing in a log file (the caller logs a summary)
    for i, (crop, err) in enumerate(tqdm(results, total=total, desc=desc, unit="img",
                                         dynamic_ncols=True, disable=None)):
        if crop is None:
            failed.append(i)
            errors.append(err or "unreadable")
        else:
            array[i] = crop
