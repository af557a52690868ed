"""Start or resume a training run: data -> splits -> image cache -> run folder -> :func:`train`.

What ``chexnet-train`` does once its arguments are parsed. Under torchrun, process 0 writes the
run folder and builds the cache while the others wait, then every process opens both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch.distributed as dist

from chexnet.training.data.cache import (
    LEGACY_CACHE_NAME,
    ImageCache,
    build_cache,
    default_cache_dir,
    legacy_cache_dir,
)
from chexnet.training.data.dataset import load_dataset
from chexnet.training.fit.cam_model import check_init_file
from chexnet.training.fit.config import TrainConfig, check_config
from chexnet.training.fit.run_folder import RunFolder
from chexnet.training.fit.train import init_distributed, train

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingOutcome:
    """The run summary (as in run.json), the run folder, and this process's rank."""

    summary: dict
    run: RunFolder
    rank: int


def start_training(config: TrainConfig, data: Path, out: Path | None = None, *,
                   cache_dir: Path | None = None, allow_missing: bool = False,
                   command_line: list[str] | None = None) -> TrainingOutcome:
    """A new run of ``config`` on ``data`` (NIH folder or CSV) in ``out`` (default
    runs/<time>-<arch>). Contradictory options fail before any data work."""
    rank, world = init_distributed()
    if world > 1 and out is None:
        raise ValueError("under torchrun, give --out (every process must use the same folder)")
    check_config(config)
    if config.init:  # fail before any data work, with the message on where to put it
        kind, _, where = config.init.partition(":")
        if kind == "imagenet":
            check_init_file(config.arch, Path(where))
        elif not (Path(where) / "best.pt").is_file():
            raise ValueError(f"--init run:{where}: no best.pt there (a chexnet-train run "
                             "folder holds one once an epoch finished)")
    out = out or Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.arch}"
    created = rank == 0 and not out.exists()
    if rank == 0:
        if (out / "run.json").is_file():
            raise ValueError(f"{out}: already holds a run; use --resume {out} or another --out")
        out.mkdir(parents=True, exist_ok=True)
    try:
        return _fit(config, Path(data), out, rank, world, cache_dir, allow_missing,
                    list(command_line or []), new=True)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that failed before writing anything leaves no empty folder
        raise


def resume_training(run_dir: Path, *, cache_dir: Path | None = None,
                    allow_missing: bool = False, threads: int | None = None
                    ) -> TrainingOutcome:
    """Continue the run in ``run_dir`` from its last finished epoch, with its own config and
    data; ``threads`` (``--threads``) replaces the run's torch thread count, which changes
    only the speed."""
    rank, world = init_distributed()
    run = RunFolder(run_dir)
    if not (run.path / "run.json").is_file():
        raise FileNotFoundError(f"{run.path}: not a run folder (no run.json)")
    info = run.info
    config = TrainConfig(**info["config"])
    if threads is not None:
        config = replace(config, threads=threads)
    return _fit(config, Path(info["data_path"]), run_dir, rank, world, cache_dir,
                allow_missing, [], new=False)


def _fit(config: TrainConfig, data: Path, run_dir: Path, rank: int, world: int,
         cache_dir: Path | None, allow_missing: bool, command_line: list[str],
         new: bool) -> TrainingOutcome:
    splits = load_dataset(data, labels=config.labels, val_fraction=config.val_fraction,
                          test_fraction=config.test_fraction, seed=config.seed,
                          allow_missing=allow_missing, report_dir=run_dir, task=config.task)
    paths = [Path(p) for p in splits.table.paths]
    if rank == 0 and new:
        RunFolder.create(run_dir, config.to_dict(), splits, command_line, data_path=data)
    # Without --cache-dir: the user's cache folder, or an old cache in the data folder.
    reuse = () if cache_dir is not None else (legacy_cache_dir(data),)
    cache_dir = cache_dir or default_cache_dir()
    cache = None
    if rank == 0:  # builds it (the others wait), and is the one that says where it is
        cache = build_cache(paths, config.spec(), cache_dir, workers=config.workers,
                            report_dir=run_dir, reuse_from=reuse)
        log.info(cache_message(cache, config.spec().size, explicit=not reuse))
    if world > 1:
        dist.barrier()
    if cache is None:
        cache = build_cache(paths, config.spec(), cache_dir, workers=config.workers,
                            report_dir=run_dir, reuse_from=reuse)
    run = RunFolder(run_dir)
    return TrainingOutcome(train(config, splits, cache, run), run, rank)


def cache_message(cache: ImageCache, size: int, explicit: bool) -> str:
    """One line: where the image cache is, whether it was built now, how to move it."""
    text = (f"image cache: {cache.path} ({'built now' if cache.built else 'reused'}; "
            f"{len(cache.array)} images at {size} px)")
    if explicit:
        return text
    if cache.path.parent.name == LEGACY_CACHE_NAME:
        return text + "; found in the data folder, where chexnet-train used to put it"
    return text + "; --cache-dir DIR puts it elsewhere"
