"""The preprocessed image cache: same pixels as the inference path, built once, keyed safely."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image as PILImage

from chexnet.inference import PreprocessSpec, load_image
from chexnet.inference.preprocessing import resize_and_crop
from chexnet.training.data.cache import CacheError, build_cache, manifest_key


def _pngs(folder, n=6, size=50):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        p = folder / f"{i}.png"
        PILImage.fromarray(rng.integers(0, 255, (size, size + 10), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_cache_holds_exactly_the_inference_crops(tmp_path, rg1_uncr):
    paths = [*_pngs(tmp_path / "img"), rg1_uncr]
    spec = PreprocessSpec(size=32, resize=40)
    cache = build_cache(paths, spec, tmp_path / "cache")
    assert cache.array.shape == (7, 32, 32)
    assert cache.failed == ()
    for i, p in enumerate(paths):
        expected, _ = resize_and_crop(load_image(p).display_u8(), spec)
        np.testing.assert_array_equal(cache.array[i], expected)


def test_cache_is_reused_and_invalidated_by_changes(tmp_path):
    paths = _pngs(tmp_path / "img")
    spec = PreprocessSpec(size=32, resize=32)
    first = build_cache(paths, spec, tmp_path / "cache")
    mtime = first.path.stat().st_mtime_ns
    again = build_cache(paths, spec, tmp_path / "cache")
    assert again.path == first.path
    assert again.path.stat().st_mtime_ns == mtime
    os.utime(paths[0], ns=(1, 1))  # a source file changed
    assert manifest_key(paths, spec) != first.path.stem
    assert build_cache(paths, PreprocessSpec(size=24, resize=24), tmp_path / "cache").path \
        != first.path


def test_a_few_unreadable_images_warn_with_a_list_too_many_fail(tmp_path):
    paths = _pngs(tmp_path / "img", n=8)
    paths[3].write_bytes(b"broken")
    cache = build_cache(paths, PreprocessSpec(size=16, resize=16), tmp_path / "c1",
                        max_failed_fraction=0.2, report_dir=tmp_path / "run")
    assert cache.failed == (3,)
    assert "3.png" in (tmp_path / "run" / "unreadable_images.txt").read_text()
    for p in paths[:4]:
        p.write_bytes(b"")
    with pytest.raises(CacheError, match="could not be read"):
        build_cache(paths, PreprocessSpec(size=16, resize=16), tmp_path / "c2")
