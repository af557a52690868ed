"""Inference preprocessing == the torchvision pipeline CheXNet reimplementations train with."""

from __future__ import annotations

import numpy as np
import pytest

torchvision = pytest.importorskip("torchvision", reason="training extra not installed")
from PIL import Image as PILImage  # noqa: E402
from torchvision import transforms  # noqa: E402

from chexnet.inference import PreprocessSpec, load_image, preprocess  # noqa: E402


@pytest.mark.parametrize("resize", [224, 256])
def test_matches_torchvision_resize_crop_totensor_normalize(rg1_uncr, nih_png, resize):
    spec = PreprocessSpec(size=224, resize=resize)
    tv = transforms.Compose([
        transforms.Resize(resize), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(spec.mean, spec.std)])
    for path in (rg1_uncr, nih_png):
        grey = load_image(path).display_u8()
        ours, _ = preprocess(grey, spec)
        theirs = tv(PILImage.fromarray(grey).convert("RGB")).numpy()
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
