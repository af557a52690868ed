"""benchmarks/gpu_check.sh stays runnable where no GPU is: ``--quick`` on the CPU, GPU parts
reported as skipped, CPU parts measured (issue 17)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = "skipped (no CUDA provider)"


def test_quick_check_runs_on_a_cpu(nih_sample, tmp_path):
    from chexnet.inference.scoring.providers import CUDA, select_providers

    if CUDA in select_providers("auto"):
        pytest.skip("a CUDA provider is usable here: the check is for CPU-only machines")
    out = tmp_path / "check.json"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--quick",
                           "--json", str(out), "--sample", str(nih_sample)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout
    r = json.loads(out.read_text())
    assert r["provider_used"]["providers"] == ["CPUExecutionProvider"]
    assert "provider actually used" in printed
    assert r["parity"]["cuda_fp32"] == SKIPPED
    assert r["parity"]["tensorrt_fp16"].startswith("skipped (no TensorRT")
    assert r["engine_img_s"]["cuda"] == SKIPPED
    assert r["facts"]["gpu_providers_usable"] == SKIPPED
    assert r["nvidia_smi_after"] == SKIPPED
    assert SKIPPED in printed
    # the CPU parts ran and measured something
    assert r["parity"]["fp16_graph_on_cpu"] < 0.01
    assert all(v > 0 for v in r["engine_img_s"]["cpu"].values())
    assert r["decode"]["img_s_per_core"] > 0
    assert r["screen"]["counts"]["ok"] == r["screen"]["images"] == 6
    assert r["training"]["fp32"]["img_s"] > 0
    assert r["training"]["amp"].startswith("skipped")
