"""The torchrun path (DistributedDataParallel over gloo on the CPU): two processes, one run,
recorded in run.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.training.data.phantom import write_phantom_dataset


def test_torchrun_two_processes_write_one_run(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    if not Path(torchrun).exists():
        pytest.skip("torchrun not found")
    labels = write_phantom_dataset(tmp_path / "ph", 64, size=64, seed=1)
    run = tmp_path / "run"
    done = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "-m", "chexnet.training.cli", str(labels), "--out",
         str(run), "--size", "64", "--epochs", "2", "--workers", "0", "--device", "cpu",
         "--max-steps-per-epoch", "2", "--batch-size", "8"],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("chexnet-train: finished") == 1  # only process 0 reports
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished"
    # the run says how it ran: processes, backend, each process's device (and logs it)
    assert info["distributed"] == {"world_size": 2, "backend": "gloo", "devices": ["cpu", "cpu"]}
    assert "distributed: 2 processes (torchrun), backend gloo, devices cpu, cpu" in done.stderr
