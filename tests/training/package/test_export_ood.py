"""A fresh export with reference images carries the out-of-distribution check; its score is
the Mahalanobis distance of torch's own pooled features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from chexnet.inference import Engine
from chexnet.training.fit.cam_model import CamClassifier
from chexnet.training.package.export import export_package, untrained_card


def test_export_with_reference_inputs_adds_the_check(tmp_path):
    torch.manual_seed(0)
    model = CamClassifier(nn.Sequential(nn.Conv2d(3, 12, 32, stride=32)), 12, 14).eval()
    rng = np.random.default_rng(0)
    refs = rng.standard_normal((40, 3, 224, 224)).astype(np.float32)
    report = export_package(model, untrained_card(), tmp_path / "m.onnx",
                            ood_inputs=refs, ood_reference="40 random inputs")
    engine = Engine(report.path, device="cpu")
    assert engine.card.ood["n_reference"] == 40
    assert engine.card.ood["reference_data"] == "40 random inputs"
    with torch.no_grad():
        pooled = model.forward_features(torch.from_numpy(refs)).mean(dim=(2, 3)).numpy()
        x = rng.standard_normal((3, 3, 224, 224)).astype(np.float32)
        new = model.forward_features(torch.from_numpy(x)).mean(dim=(2, 3)).numpy()
    from sklearn.covariance import OAS

    oas = OAS().fit(pooled.astype(np.float64))
    cov_inverse = np.linalg.inv(oas.covariance_)
    d = new - oas.location_
    expected = np.sqrt(np.einsum("nk,kl,nl->n", d, cov_inverse, d))
    np.testing.assert_allclose(engine.run(x).ood, expected, rtol=1e-3)
