"""A training run's folder: configuration, splits, per-epoch log, checkpoints, validation outputs.

```
run/
  run.json              config, data summary and split rule, status, best epoch, git commit,
                        processes and devices (distributed), CPU threads
  metrics.jsonl         one line per epoch (losses, lr, validation AUROCs, images/s)
  splits/{train,val,test}_list.txt
  best.pt               state dict of the lowest validation loss + what export needs
  last.pt               model, optimiser and scheduler state: --resume continues from it
  val_predictions.npz   validation probabilities of best.pt (export chooses thresholds on it)
```

Checkpoints are plain dicts of tensors and JSON-like values, always loaded with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chexnet.inference.atomic_file import write_atomic
from chexnet.training.data.dataset import Splits
from chexnet.training.data.labels import LabelTable

CHECKPOINT_FORMAT = 1


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _save_checkpoint(obj: Any, path: Path) -> None:
    """``torch.save`` through the one atomic writer: an interrupted save never leaves a
    truncated checkpoint where ``--resume`` or export would read it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_atomic(path, buffer.getvalue())


def _write_json(path: Path, obj: dict) -> None:
    write_atomic(path, json.dumps(obj, indent=1, default=str))


class RunFolder:
    """Reads and writes one run folder (layout: module doc); every file is replaced whole."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: Path, config: dict, splits: Splits, command: list[str],
               data_path: Path) -> RunFolder:
        run = cls(path)
        run.path.mkdir(parents=True, exist_ok=True)
        splits.write_lists(run.path / "splits")
        _write_json(run.path / "run.json", {
            "status": "started", "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command, "config": config, "data_path": str(data_path.resolve()),
            "data": splits.summary(),
            "git_commit": git_commit(), "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.machine()})
        return run

    @property
    def info(self) -> dict:
        return json.loads((self.path / "run.json").read_text())

    def record(self, **fields: Any) -> None:
        """Add or replace top-level fields of run.json."""
        _write_json(self.path / "run.json", {**self.info, **fields})

    def mark(self, status: str, epoch: int, **extra: Any) -> None:
        info = self.info
        info.update(status=status, last_epoch=epoch + 1, **extra,
                    updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        _write_json(self.path / "run.json", info)

    def log_epoch(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

    def save_best(self, model: torch.nn.Module, config: Any, labels: tuple[str, ...],
                  epoch: int) -> None:
        _save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                          "epoch": epoch, "arch": config.arch, "labels": list(labels),
                          "config": config.to_dict()}, self.path / "best.pt")

    def save_last(self, model, optimizer, scheduler, scaler, epoch: int, best: dict,
                  config: Any) -> None:
        _save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict(),
                          "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                          "epoch": epoch, "best": best, "arch": config.arch,
                          "config": config.to_dict()}, self.path / "last.pt")

    def load_last(self) -> dict | None:
        path = self.path / "last.pt"
        return torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None

    def save_val_predictions(self, rows: np.ndarray, probs: np.ndarray, table: LabelTable,
                             epoch: int) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, ids=np.array([table.ids[i] for i in rows]), probs=probs,
                 y=table.y[rows], labels=np.array(table.labels), epoch=np.array(epoch))
        write_atomic(self.path / "val_predictions.npz", buffer.getvalue())

    def load_val_predictions(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "val_predictions.npz") as f:
            return {k: f[k] for k in f.files}


def load_checkpoint(path: Path) -> dict:
    """A best.pt/last.pt of this project (plain state dict + metadata), loaded safely."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "model" not in state or "arch" not in state:
        raise ValueError(f"{path}: not a chexnet-train checkpoint (no 'model'/'arch'); import "
                         "other weights with `chexnet import`")
    return state


def init_from_run(model: torch.nn.Module, run_dir: Path, arch: str,
                  labels: tuple[str, ...]) -> str:
    """Start ``model`` from another run's ``best.pt`` (``--init run:RUN_DIR``): fine-tuning on
    new labels, e.g. a site's reader feedback. The backbone must be the run's; the head is kept
    when the labels are the run's, in the same order, else it starts new (said in the
    returned text). Raises :class:`ValueError` naming what does not fit."""
    path = Path(run_dir) / "best.pt"
    if not path.is_file():
        raise ValueError(f"--init run:{run_dir}: no best.pt there (a chexnet-train run folder "
                         "holds one once an epoch finished)")
    state = load_checkpoint(path)
    if state["arch"] != arch:
        raise ValueError(f"--init run:{run_dir}: that run trained {state['arch']}, this one "
                         f"{arch} (pass --arch {state['arch']})")
    weights = state["model"]
    same_head = tuple(state.get("labels") or ()) == tuple(labels)
    if not same_head:
        head = {k for k, v in model.state_dict().items() if k not in weights
                or weights[k].shape != v.shape}
        weights = {k: v for k, v in weights.items() if k not in head
                   and not k.startswith("classifier.")}
    missing, unexpected = model.load_state_dict(weights, strict=same_head)
    if unexpected or any(not k.startswith("classifier.") for k in missing):
        raise ValueError(f"--init run:{run_dir}: its weights do not fit this model "
                         f"({len(missing)} missing, {len(unexpected)} unexpected keys)")
    return ("the run's weights and head" if same_head else
            "the run's backbone; a new head (its labels differ from this data's)")
