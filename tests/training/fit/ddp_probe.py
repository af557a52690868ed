"""Run ``chexnet-train`` under torchrun while recording, per process, the network's weights
after every epoch and every run-folder write (tests/training/fit/test_ddp_ranks.py).

Usage: torchrun --nproc_per_node 2 ddp_probe.py PROBE_DIR <chexnet-train arguments>
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from chexnet.training.cli import train as cli
from chexnet.training.fit import train as train_module
from chexnet.training.fit.run_folder import RunFolder

WRITES = ("record", "mark", "log_epoch", "save_best", "save_last", "save_val_predictions")


def main() -> int:
    probe, argv = Path(sys.argv[1]), sys.argv[2:]
    rank = int(os.environ.get("RANK", "0"))
    writes: list[str] = []
    real_epoch = train_module.train_epoch

    def epoch_then_dump(net, *args, **kwargs):
        result = real_epoch(net, *args, **kwargs)
        module = getattr(net, "module", net)
        epoch = len(list(probe.glob(f"rank{rank}-epoch*.pt")))
        torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()},
                   probe / f"rank{rank}-epoch{epoch}.pt")
        return result

    def spy(name):
        real = getattr(RunFolder, name)

        def wrapper(self, *args, **kwargs):
            writes.append(name)
            return real(self, *args, **kwargs)

        return wrapper

    train_module.train_epoch = epoch_then_dump
    for name in WRITES:
        setattr(RunFolder, name, spy(name))
    real_create = RunFolder.create.__func__

    def create(cls, *args, **kwargs):
        writes.append("create")
        return real_create(cls, *args, **kwargs)

    RunFolder.create = classmethod(create)
    code = cli.main(argv)
    (probe / f"rank{rank}-writes.json").write_text(json.dumps(writes))
    return code


if __name__ == "__main__":
    sys.exit(main())
