"""The calibration baked into a package's graph is the numpy reference (within 1e-5), leaves
cams alone, and a second calibration replaces the first instead of stacking."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

from chexnet.training.evaluation.calibration import apply_platt
from chexnet.training.package.calibration_graph import (
    add_calibration,
    compose,
    current_calibration,
    without_calibration,
)
from tests.tiny_model import build_tiny_package, reference_outputs


def _run(model: onnx.ModelProto, x: np.ndarray):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probs", "cams"], {"image": x})


def test_baked_probs_equal_the_numpy_reference(tmp_path):
    model = onnx.load(str(build_tiny_package(tmp_path / "tiny.onnx")))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3, 224, 224)).astype(np.float32) * 2
    a, b = rng.uniform(0.3, 3.0, 14), rng.normal(size=14)
    baked = add_calibration(model, a, b)
    onnx.checker.check_model(baked)
    probs, cams = _run(baked, x)
    ref_probs, ref_cams = reference_outputs(x)
    assert np.max(np.abs(probs - apply_platt(ref_probs, a, b))) < 1e-5
    assert np.max(np.abs(cams - ref_cams)) < 1e-4  # untouched
    np.testing.assert_array_equal(cams, _run(model, x)[1])
    assert np.allclose(current_calibration(baked), (a, b), atol=1e-6)

    # again: replaces (probs of the source, not of the calibrated graph), and undoes cleanly
    a2 = np.full(14, 0.5)
    again = add_calibration(baked, a2, np.zeros(14))
    assert np.max(np.abs(_run(again, x)[0] - apply_platt(ref_probs, a2, 0))) < 1e-5
    plain = without_calibration(again)
    assert current_calibration(plain) is None
    np.testing.assert_array_equal(_run(plain, x)[0], _run(model, x)[0])


def test_compose_is_one_calibration_after_another():
    p = np.linspace(0.01, 0.99, 50, dtype=np.float32)[:, None]
    first, then = (np.array([2.0]), np.array([-0.5])), (np.array([0.7]), np.array([0.3]))
    twice = apply_platt(apply_platt(p, *first), *then)
    np.testing.assert_allclose(apply_platt(p, *compose(first, then)), twice, atol=1e-5)


def test_tuning_loads_no_torch():
    code = ("import sys; import chexnet.training.package.tune_package, "
            "chexnet.training.cli.tune; assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True)
