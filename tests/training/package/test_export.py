"""Export: a real DenseNet-121 with the CAM head -> model package, ONNX Runtime == torch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.inference import (  # noqa: E402  # noqa: E402
    CHESTXRAY14_LABELS,
    Engine,
    ModelCard,
    PreprocessSpec,
    load_image,
    preprocess,
)
from chexnet.training.fit.cam_model import ExportWrapper, build_model  # noqa: E402
from chexnet.training.package.export import (  # noqa: E402
    ExportMismatchError,
    export_package,
    verify_export,
)


@pytest.fixture(scope="module")
def real_inputs(rg1_j2kr, nih_png):
    spec = PreprocessSpec()
    return np.stack([preprocess(load_image(p).display_u8(), spec)[0] for p in (rg1_j2kr, nih_png)])


@pytest.fixture(scope="module")
def densenet_package(tmp_path_factory, real_inputs):
    torch.manual_seed(0)
    model = build_model("densenet121", 14)
    card = ModelCard(name="untrained-densenet121", version="0.0.0", labels=CHESTXRAY14_LABELS,
                     preprocess=PreprocessSpec(), thresholds={}, demo=True,
                     description="random weights: outputs are meaningless", arch="densenet121")
    path = tmp_path_factory.mktemp("export") / "densenet121.onnx"
    report = export_package(model, card, path, check_inputs=real_inputs)
    return model, path, report


def test_densenet121_export_matches_torch_on_real_images(densenet_package, real_inputs):
    model, path, report = densenet_package
    assert report.max_abs_diff_probs <= 1e-4
    engine = Engine(path, device="cpu")
    out = engine.run(real_inputs)
    with torch.no_grad():
        probs, cams = model.probs_and_cams(torch.from_numpy(real_inputs))
    assert np.abs(out.probs - probs.numpy()).max() <= 1e-4
    assert out.cams.shape == (2, 14, 7, 7)
    np.testing.assert_allclose(out.cams, cams.numpy(), rtol=1e-3, atol=1e-3)


def test_cam_is_exact_for_the_gap_linear_head(densenet_package, real_inputs):
    """mean_hw(CAM_c) + b_c is the class logit: what makes CAM = sum_k w_ck f_k honest."""
    model, _, _ = densenet_package
    with torch.no_grad():
        x = torch.from_numpy(real_inputs)
        probs, cams = model.probs_and_cams(x)
        logits = cams.mean(dim=(2, 3)) + model.classifier.bias
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), probs.numpy(), atol=1e-6)


def test_mismatch_is_refused(densenet_package, real_inputs):
    _model, path, _ = densenet_package
    other = build_model("densenet121", 14)  # different random weights
    with pytest.raises(ExportMismatchError, match="disagree"):
        verify_export(ExportWrapper(other).eval(), path, real_inputs)


@pytest.mark.parametrize("arch", ["resnet101", "vgg16", "vgg16_bn"])
def test_other_backbones_give_cams(arch):
    model = build_model(arch, 3).eval()
    with torch.no_grad():
        probs, cams = model.probs_and_cams(torch.zeros(1, 3, 224, 224))
    assert probs.shape == (1, 3)
    assert cams.shape[:2] == (1, 3)
    assert cams.shape[2] >= 7
