"""The out-of-distribution check: graph surgery against numpy, the threshold rule, the CLI."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from PIL import Image as PILImage

from chexnet.inference import Engine
from chexnet.inference.package.card import OOD_NAME
from chexnet.training.cli.train import main as train_main
from chexnet.training.package.ood_fit import (
    cross_fitted_scores,
    fit_gaussian,
    fit_ood_package,
)
from chexnet.training.package.ood_graph import add_ood_score, find_feature_map, without_ood
from tests.tiny_model import K, build_tiny_package, tiny_weights


def tiny_pooled(x: np.ndarray) -> np.ndarray:
    """The tiny graph's pooled feature map, computed in numpy (independent of the graph)."""
    w = tiny_weights()
    pooled = x.reshape(len(x), 3, 7, 32, 7, 32).mean(axis=(3, 5))
    f = np.einsum("kc,nchw->nkhw", w["conv_w"][:, :, 0, 0], pooled)
    return np.maximum(f + w["conv_b"][None, :, None, None], 0).mean(axis=(2, 3))


def _inputs(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 224, 224)).astype(np.float32)


@pytest.fixture
def reference_pngs(tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "refs"
    folder.mkdir()
    yy, xx = np.mgrid[0:256, 0:256]
    for i in range(30):  # smooth, contrasted images the intended-use gate accepts
        img = 128 + 90 * np.sin(xx / (8 + i) + rng.uniform(0, 6)) * np.cos(yy / (9 + i % 7))
        PILImage.fromarray(np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(
            np.uint8)).save(folder / f"r{i:02d}.png")
    return folder


def test_feature_map_is_the_tensor_probs_and_cams_share(tmp_path):
    model = onnx.load(str(build_tiny_package(tmp_path / "t.onnx")))
    assert find_feature_map(model) == "f"


def test_graph_ood_score_is_the_numpy_mahalanobis_distance(tmp_path):
    path = build_tiny_package(tmp_path / "t.onnx")
    ref = tiny_pooled(_inputs(40, 1))
    gaussian = fit_gaussian(ref, "ledoit-wolf")
    model = add_ood_score(onnx.load(str(path)), gaussian.mean, gaussian.whitening)
    out = tmp_path / "ood.onnx"
    onnx.save(model, str(out))
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = _inputs(6, 2)
    (got,) = session.run([OOD_NAME], {"image": x})
    # independent: the precision matrix from sklearn's covariance, not the whitening factor
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(ref)
    d = tiny_pooled(x) - lw.location_
    expected = np.sqrt(np.einsum("nk,kl,nl->n", d, np.linalg.inv(lw.covariance_), d))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert got.shape == (6,)
    # surgery again replaces, never duplicates
    again = add_ood_score(model, gaussian.mean, gaussian.whitening)
    assert [o.name for o in again.graph.output] == ["probs", "cams", OOD_NAME]
    assert len(without_ood(again).graph.node) == len(onnx.load(str(path)).graph.node)


def test_threshold_is_the_stated_percentile_of_cross_fitted_scores(tmp_path, reference_pngs):
    path = build_tiny_package(tmp_path / "t.onnx")
    images = sorted(reference_pngs.glob("*.png"))
    fit = fit_ood_package(path, images, tmp_path / "out.onnx", reference_data="test refs",
                          percentile=90, folds=5)
    ood = fit.card.ood
    assert fit.n_reference == 30
    assert ood["n_reference"] == 30
    assert fit.max_abs_diff_probs == 0
    assert fit.max_abs_diff_cams == 0
    from chexnet.training.package.ood_fit import FeatureExtractor

    features, _ = FeatureExtractor(path).image_features(images)
    scores = cross_fitted_scores(features, "oas", 5)
    assert ood["threshold"] == pytest.approx(np.percentile(scores, 90), abs=1e-3)
    assert ood["percentile"] == 90
    assert "cross-fitted" in ood["threshold_rule"]
    engine = Engine(tmp_path / "out.onnx", device="cpu")
    assert engine.card.ood_threshold == pytest.approx(ood["threshold"])
    # the graph's score of a reference image equals the in-sample numpy distance
    x = FeatureExtractor(path).features
    gaussian = fit_gaussian(features, "oas")
    np.testing.assert_allclose(engine.run(_inputs(3, 4)).ood,
                               gaussian.distance(x(_inputs(3, 4))), rtol=1e-3)


def test_cli_writes_a_package_with_the_check(tmp_path, reference_pngs, capsys):
    path = build_tiny_package(tmp_path / "t.onnx")
    out = tmp_path / "new.onnx"
    assert train_main(["ood-fit", "--model", str(path), "--images", str(reference_pngs),
                       "--out", str(out), "--estimator", "ledoit-wolf"]) == 0
    assert "out-of-distribution limit" in capsys.readouterr().out
    card = Engine(out, device="cpu").card
    assert card.ood["covariance"].startswith("ledoit-wolf")
    assert card.ood["feature_dim"] == K


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        train_main(["ood-fit", "--help"])
    assert "chexnet-train ood-fit --model" in capsys.readouterr().out


def test_cli_refuses_too_few_images(tmp_path, reference_pngs, capsys):
    path = build_tiny_package(tmp_path / "t.onnx")
    few = tmp_path / "few.txt"
    few.write_text("".join(f"{p}\n" for p in sorted(reference_pngs.glob("*.png"))[:4]))
    assert train_main(["ood-fit", "--model", str(path), "--images", str(few),
                       "--out", str(tmp_path / "x.onnx")]) == 2
    assert "too few" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
