"""torchrun with two processes (gloo on the CPU): after every epoch both ranks hold identical
weights (DDP averaged the gradients), rank 0's state is what the run saved, and only rank 0
wrote the run folder.

Batch-norm running statistics are buffers, not weights: DDP broadcasts rank 0's at the start of
every forward pass, so after an epoch each rank's hold its own last batch's update until the
next forward; the saved model carries rank 0's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="training extra (torch) not installed")

from chexnet.training.data.phantom import write_phantom_dataset  # noqa: E402
from chexnet.training.fit.cam_model import build_model  # noqa: E402
from chexnet.training.fit.run_folder import load_checkpoint  # noqa: E402

PROBE = Path(__file__).with_name("ddp_probe.py")


def test_ranks_end_with_identical_weights_and_only_rank_0_writes(tmp_path):
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    if not Path(torchrun).exists():
        pytest.skip("torchrun not found")
    labels = write_phantom_dataset(tmp_path / "ph", 48, size=32, seed=3)
    run, probe = tmp_path / "run", tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        [torchrun, "--nproc_per_node", "2", str(PROBE), str(probe), str(labels), "--out",
         str(run), "--size", "32", "--epochs", "2", "--workers", "0", "--device", "cpu",
         "--max-steps-per-epoch", "2", "--batch-size", "4", "--threads", "1",
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    weights = [name for name, _ in build_model("densenet121", 2).named_parameters()]
    for epoch in range(2):
        a = torch.load(probe / f"rank0-epoch{epoch}.pt", weights_only=True)
        b = torch.load(probe / f"rank1-epoch{epoch}.pt", weights_only=True)
        assert a.keys() == b.keys()
        assert len(weights) > 300
        differ = [k for k in weights if not torch.equal(a[k], b[k])]
        assert differ == [], f"ranks' weights differ after epoch {epoch + 1}: {differ[:3]}"
    first = torch.load(probe / "rank0-epoch0.pt", weights_only=True)
    assert not all(torch.equal(first[k], a[k]) for k in weights)  # epoch 2 did change them
    saved = load_checkpoint(run / "last.pt")["model"]
    assert all(torch.equal(saved[k], a[k]) for k in a)  # what the run kept: rank 0's state
    writes0 = json.loads((probe / "rank0-writes.json").read_text())
    writes1 = json.loads((probe / "rank1-writes.json").read_text())
    assert {"create", "record", "log_epoch", "save_last", "mark"} <= set(writes0)
    assert writes1 == []
