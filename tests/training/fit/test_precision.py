"""Training precision: the AMP plan per device, bf16 autocast on the CPU (runs, finite, close
to fp32), and a run that records what it computed in."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.training.cli import train as cli  # noqa: E402
from chexnet.training.data.phantom import write_phantom_dataset  # noqa: E402
from chexnet.training.fit.cam_model import build_model  # noqa: E402
from chexnet.training.fit.precision import amp_plan  # noqa: E402


def test_plan_per_device_and_request():
    bf16 = amp_plan("cuda", "auto", bf16_supported=True)
    assert (bf16.name, bf16.scaler, bf16.channels_last) == ("bf16", False, True)
    fp16 = amp_plan("cuda", "auto", bf16_supported=False)
    assert (fp16.name, fp16.scaler) == ("fp16", True)  # fp16's range needs the scaler
    assert amp_plan("cuda", "auto", amp=False, bf16_supported=True).name == "fp32"  # --no-amp
    cpu = amp_plan("cpu", "auto")
    assert (cpu.enabled, cpu.channels_last) == (False, False)  # the CPU path as it was
    assert amp_plan("cpu", "bf16").name == "bf16"
    assert amp_plan("cpu", "fp16").scaler
    assert amp_plan("cpu", "bf16").record(False) == {
        "autocast": "bf16", "grad_scaler": False, "channels_last": False, "compile": False}
    with pytest.raises(ValueError, match="--precision"):
        amp_plan("cpu", "int8")


def test_bf16_autocast_on_cpu_is_finite_and_close_to_fp32():
    torch.manual_seed(0)
    model = build_model("densenet121", 14).train()
    x = torch.randn(2, 3, 32, 32)
    y = (torch.rand(2, 14) < 0.3).float()
    criterion = torch.nn.BCEWithLogitsLoss()
    full = criterion(model(x).float(), y)
    plan = amp_plan("cpu", "bf16")
    with torch.autocast("cpu", dtype=plan.dtype, enabled=plan.enabled):
        logits = model(x)
        half = criterion(logits.float(), y)
    assert logits.dtype == torch.bfloat16  # autocast did run the network in bf16
    half.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert torch.isfinite(half)
    assert all(torch.isfinite(g).all() for g in grads)
    assert abs(float(half) - float(full)) < 0.02 * float(full)


def test_bf16_run_records_its_precision(tmp_path, capsys):
    labels = write_phantom_dataset(tmp_path / "ph", 24, size=64, seed=2)
    run = tmp_path / "run"
    code = cli.main([str(labels), "--out", str(run), "--size", "64", "--epochs", "1",
                     "--workers", "0", "--device", "cpu", "--precision", "bf16",
                     "--cache-dir", str(tmp_path / "cache"), "--max-steps-per-epoch", "1",
                     "--batch-size", "4"])
    assert code == 0, capsys.readouterr().err
    info = json.loads((run / "run.json").read_text())
    assert info["precision"] == {"autocast": "bf16", "grad_scaler": False,
                                 "channels_last": False, "compile": False}
    assert info["config"]["precision"] == "bf16"
    epoch = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert np.isfinite(epoch["train_loss"])
    assert np.isfinite(epoch["val_loss"])
