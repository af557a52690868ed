"""Imported packages score NIH images as their sources do: each source's release file (legacy
format, seeded weights, its own model classes) imported with no flags, compared with the
source's own forward on its own preprocessing and test-time augmentation (see fidelity.py;
benchmarks/import_fidelity.py measures the same on more images for the README)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")
pytest.importorskip("torchvision", reason="training extra not installed")
pytest.importorskip("skimage", reason="dev extra (scikit-image: torchxrayvision's resize)")

from tests.training.package.fidelity import build_sources, import_all, measure

#: Few images: DenseNet-121 forwards are slow on shared cores (the benchmark uses more).
N_IMAGES = {"arnoweng": 2, "reproduce-chexnet": 2, "torchxrayvision": 4}


@pytest.fixture(scope="module")
def nih_images(nih_sample):
    images = sorted((nih_sample / "images").glob("*.png"))
    if len(images) < 4:
        pytest.skip("the NIH sample has fewer than 4 images")
    return images[:: max(1, len(images) // 4)][:4]


@pytest.fixture(scope="module")
def imported(tmp_path_factory, nih_images):
    folder = tmp_path_factory.mktemp("fidelity")
    sources = build_sources(folder, nih_images[:2], tuple(N_IMAGES))
    import_all(sources, folder)
    return sources


@pytest.mark.parametrize("key", list(N_IMAGES))
def test_package_scores_as_the_source_does(imported, nih_images, key):
    figures = measure(imported[key], nih_images[:N_IMAGES[key]])
    assert figures.conversion <= 1e-4, figures
    assert figures.end_to_end <= 0.01, figures
    assert figures.cam_conversion <= 1e-4, figures
    assert figures.tta == ("ten-crop" if key == "arnoweng" else "none")
