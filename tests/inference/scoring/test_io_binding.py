"""IO binding on the CPU provider: bound runs equal plain ``session.run`` bit for bit (the GPU
path runs the same binding calls with device_type "cuda")."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest

from chexnet.inference.package.lookup import resolve_model
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.io_binding import (
    BoundRunner,
    FixedBatchRunner,
    SessionRunner,
    make_runner,
)

OUTPUTS = ["probs", "cams", "ood_score"]


@pytest.fixture(scope="module")
def bundled():
    package = resolve_model(None)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(package.path), options,
                                   providers=["CPUExecutionProvider"])
    x = np.random.default_rng(7).standard_normal((3, 3, 224, 224)).astype(np.float32)
    return package, session, x, session.run(OUTPUTS, {"image": x})


def test_bound_run_equals_session_run(bundled):
    _, session, x, reference = bundled
    got = BoundRunner(session, "image", OUTPUTS, device_type="cpu").run(x)
    for ref, out in zip(reference, got, strict=True):
        assert out.dtype == ref.dtype
        assert np.array_equal(out, ref)


def test_fixed_buffers_pad_short_batches_and_keep_their_outputs(bundled):
    _, session, x, reference = bundled
    runner = FixedBatchRunner(session, "image", OUTPUTS, batch=4, input_shape=(3, 224, 224),
                              device_type="cpu")
    first = runner.run(x)            # 3 of 4 rows: one padding row dropped
    second = runner.run(x[:2][::-1])  # same buffers, other rows, other order
    for ref, a, b in zip(reference, first, second, strict=True):
        assert a.shape == ref.shape
        assert np.array_equal(a, ref)
        assert np.array_equal(b, ref[:2][::-1])
    # the outputs returned before are copies, not views of the reused buffers
    assert np.array_equal(first[0], reference[0])
    with pytest.raises(ValueError, match="hold 4"):
        runner.run(np.zeros((5, 3, 224, 224), np.float32))


def test_engine_on_cpu_keeps_plain_session_run_and_its_outputs(bundled):
    package, _, x, reference = bundled
    engine = Engine(package, device="cpu")
    assert type(engine.runner) is SessionRunner  # the CPU path: session.run, as before
    assert engine.precision == "fp32"
    assert engine.trt_cache is None
    out = engine.run(x)
    assert np.array_equal(out.probs, reference[0])
    assert np.array_equal(out.cams, reference[1])
    assert np.array_equal(out.ood, reference[2])


def test_make_runner_picks_binding_on_gpu_providers(bundled):
    _, session, _, _ = bundled
    assert type(make_runner(session, "image", OUTPUTS, gpu=False)) is SessionRunner
    bound = make_runner(session, "image", OUTPUTS, gpu=True)
    assert type(bound) is BoundRunner
    assert bound.device_type == "cuda"


class _SymbolicShapes:
    """A session whose outputs' shapes are not all known (allocated by the first run)."""

    def __init__(self, session):
        self.session = session

    def get_outputs(self):
        return [SimpleNamespace(name=o.name, shape=["batch", "k"]) for o in
                self.session.get_outputs()]

    def __getattr__(self, name):
        return getattr(self.session, name)


def test_fixed_buffers_when_the_first_run_allocates_the_outputs(bundled):
    _, session, x, reference = bundled
    runner = FixedBatchRunner(_SymbolicShapes(session), "image", OUTPUTS, batch=3,
                              input_shape=(3, 224, 224), device_type="cpu")
    assert runner.outputs is None
    first = runner.run(x)
    kept = [v.data_ptr() for v in runner.outputs]
    second = runner.run(x[1:])
    assert [v.data_ptr() for v in runner.outputs] == kept  # same addresses from then on
    for ref, a, b in zip(reference, first, second, strict=True):
        assert np.array_equal(a, ref)
        assert np.array_equal(b, ref[1:])
