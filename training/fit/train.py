"""The CheXNet training loop (Rajpurkar et al. 2017) over a run folder.

Defaults follow the paper: DenseNet-121, C-way linear + sigmoid head, 224x224 input, ImageNet
mean/std, random horizontal flip, Adam (beta 0.9, 0.999), lr 0.001, batch 16, learning rate / 10
when the validation loss plateaus after an epoch, keep the lowest validation loss.

Single-label task (the hospital CAD paper's single-disease classification): softmax +
cross-entropy over images carrying exactly one label; ``--min-per-class``/``--max-normal``/
``--normal-fraction`` resample the training split (:mod:`.loaders`).

On CUDA: AMP (bf16 where supported, else fp16 with a gradient scaler) and channels_last;
``--precision`` and ``--compile`` change that (:mod:`.precision`).
Distributed: launch with ``torchrun``; PyTorch's DistributedDataParallel does the work; run.json
records the processes, backend and devices.

Speed: ``--threads`` sets torch's CPU threads for the run; every epoch logs its training images/s,
and an epoch at under a third of the first one's gets a warning (other processes on the CPUs,
most often) that names ``--threads``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from chexnet.training.data.cache import ImageCache
from chexnet.training.data.dataset import Splits
from chexnet.training.data.resample import ResamplingSampler
from chexnet.training.data.uncertain import apply_uncertain
from chexnet.training.fit.cam_model import build_model
from chexnet.training.fit.config import TrainConfig, check_config
from chexnet.training.fit.loaders import (
    CachedImages,
    make_train_loader,
    make_val_loader,
    seed_epoch,
)
from chexnet.training.fit.precision import amp_plan, maybe_compile
from chexnet.training.fit.run_folder import RunFolder, init_from_run
from chexnet.training.fit.uncertain import MaskedBCEWithLogitsLoss, known_aurocs
from chexnet.training.fit.validation import evaluate_loss

log = logging.getLogger(__name__)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def init_distributed() -> tuple[int, int]:
    """(rank, world size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def make_criterion(config: TrainConfig, pos_weight: torch.Tensor | None = None) -> nn.Module:
    """BCE-with-logits per label (multi-label), or cross-entropy over the classes
    (single-label; the targets are one-hot rows, which ``CrossEntropyLoss`` takes as class
    probabilities)."""
    if config.task == "single-label":
        return nn.CrossEntropyLoss()
    if config.uncertain == "ignore":  # U-Ignore: -1 targets masked; the same loss without them
        return MaskedBCEWithLogitsLoss(pos_weight)
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)


def train(config: TrainConfig, splits: Splits, cache: ImageCache, run: RunFolder) -> dict:
    """Train, validating every epoch; returns the run summary (also written to run.json)."""
    check_config(config)
    rank, world = init_distributed()
    device = _device(config.device) if world == 1 else torch.device(
        f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(config, splits, cache, run, rank, world, device)
    finally:  # the process's thread count is not this run's to keep (library use, tests)
        torch.set_num_threads(threads_before)


def _compute_record(config: TrainConfig, world: int, device: torch.device) -> dict:
    """run.json's ``distributed`` and ``threads``: how many processes on which devices, and
    how many CPU threads each uses."""
    devices = [str(device)]
    if world > 1:
        devices = [""] * world
        dist.all_gather_object(devices, str(device))
    return {"distributed": {"world_size": world,
                            "backend": dist.get_backend() if world > 1 else None,
                            "devices": devices},
            "threads": {"torch": torch.get_num_threads(), "loader_workers": config.workers,
                        "set_by": "--threads" if config.threads is not None else
                        "torch default"}}


def _train(config: TrainConfig, splits: Splits, cache: ImageCache, run: RunFolder, rank: int,
           world: int, device: torch.device) -> dict:
    compute = _compute_record(config, world, device)
    if rank == 0:
        run.record(**compute)
        if world > 1:
            log.info("distributed: %d processes (torchrun), backend %s, devices %s", world,
                     compute["distributed"]["backend"], ", ".join(compute["distributed"]
                                                                   ["devices"]))
        log.info("training on %s with %d torch thread(s) (%s) and %d data loader worker(s)",
                 device, compute["threads"]["torch"], compute["threads"]["set_by"],
                 config.workers)
    torch.manual_seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    spec, table = config.spec(), apply_uncertain(splits.table, config.uncertain)
    usable = np.setdiff1d(np.arange(len(table)), cache.failed)
    train_rows = np.intersect1d(splits.train, usable)
    val_rows = np.intersect1d(splits.val, usable)
    n_classes = len(table.labels)
    kind, _, where = (config.init or "").partition(":")
    model = build_model(config.arch, n_classes, Path(where) if kind == "imagenet" else None,
                        task=config.task)
    if kind == "run":  # fine-tuning another run (e.g. on a site's reader feedback)
        started = init_from_run(model, Path(where), config.arch, tuple(table.labels))
        log.info("started from %s of %s", started, where)
    model = model.to(device)
    plan = amp_plan(device.type, config.precision, config.amp)
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    use_amp, amp_dtype = plan.enabled, plan.dtype
    scaler = torch.amp.GradScaler(device.type, enabled=plan.scaler)
    net = maybe_compile(nn.parallel.DistributedDataParallel(model) if world > 1 else model,
                        config.compile)
    if rank == 0:
        run.record(precision=plan.record(config.compile))
    y_train = table.y[train_rows]
    pos = (y_train == 1).sum(axis=0).astype(np.float64)
    pos_weight = None
    if config.balance == "pos_weight":
        pos_weight = torch.tensor((len(train_rows) - pos) / np.maximum(pos, 1), dtype=torch.float32,
                                  device=device)
    criterion = make_criterion(config, pos_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.1, patience=config.plateau_patience)
    start_epoch, best = 0, {"val_loss": math.inf, "epoch": -1}
    state = run.load_last()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        start_epoch, best = int(state["epoch"]) + 1, dict(state["best"])
        log.info("resuming %s at epoch %d", run.path, start_epoch + 1)
    train_set = CachedImages(cache, train_rows, y_train, spec, flip=True)
    val_set = CachedImages(cache, val_rows, table.y[val_rows], spec, flip=False)
    train_loader = make_train_loader(train_set, config, world, rank, np.maximum(y_train, 0),
                                     table.labels)
    resampling = (train_loader.sampler.plan.summary()
                  if isinstance(train_loader.sampler, ResamplingSampler) else None)
    if resampling and rank == 0:
        log.info("resampling the training split: %d draws per epoch from %d images (%s)",
                 resampling["epoch_size"], len(train_rows),
                 ", ".join(f"{g} {v['images']}->{v['drawn_per_epoch']}"
                           for g, v in resampling["per_class"].items()))
    val_loader = make_val_loader(val_set, config)
    epoch, first_rate = start_epoch, None
    try:
        for epoch in range(start_epoch, config.epochs):
            # Randomness is a function of (seed, epoch, rank), so a resumed run draws the same
            # shuffles and flips as an uninterrupted one would.
            seed_epoch(config.seed, epoch, rank, train_loader)
            t0 = time.perf_counter()
            train_loss, seen = train_epoch(net, train_loader, criterion, optimizer, scaler,
                                           device, use_amp, amp_dtype, epoch, config, rank)
            train_s = time.perf_counter() - t0
            val_loss, val_probs = evaluate_loss(model, val_loader, criterion, device, use_amp,
                                                amp_dtype)
            scheduler.step(val_loss)
            rate = seen * world / max(train_s, 1e-9)  # the training pass only
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                      "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0,
                      "train_seconds": train_s, "train_images_per_s": rate,
                      "val_auroc": known_aurocs(table.y[val_rows], val_probs, table.labels)}
            if resampling and epoch == start_epoch:
                record["resampling"] = resampling
            if rank == 0:
                if val_loss < best["val_loss"]:
                    best = {"val_loss": val_loss, "epoch": epoch + 1}
                    run.save_best(model, config, table.labels, epoch + 1)
                    run.save_val_predictions(val_rows, val_probs, table, epoch + 1)
                run.log_epoch(record)
                run.save_last(model, optimizer, scheduler, scaler, epoch, best, config)
                mean = record["val_auroc"].get("mean")
                log.info("epoch %d/%d: train loss %.4f, val loss %.4f, mean val AUROC %s; "
                         "%.1f images/s", epoch + 1, config.epochs, train_loss, val_loss,
                         "undefined" if mean is None else f"{mean:.3f}", rate)
                first_rate = rate if first_rate is None else first_rate
                slow = slow_epoch_warning(epoch + 1, rate, start_epoch + 1, first_rate,
                                          compute["threads"]["torch"], run.path)
                if slow:
                    log.warning(slow)
    except KeyboardInterrupt:
        if rank == 0:
            run.mark("interrupted", epoch - 1)  # the last *finished* epoch
        raise
    finally:
        if world > 1:
            dist.destroy_process_group()
    summary = {"status": "finished", "best": best, "epochs": config.epochs}
    if rank == 0:
        run.mark("finished", epoch, best=best)
    return summary


#: An epoch slower than this fraction of the session's first epoch gets a warning.
SLOW_EPOCH_FRACTION = 1 / 3


def slow_epoch_warning(epoch: int, rate: float, first_epoch: int, first_rate: float,
                       threads: int, run: Path | str = "RUN") -> str | None:
    """One line when ``epoch`` trained at under :data:`SLOW_EPOCH_FRACTION` of the images/s of
    this session's first epoch, naming the likely cause and ``--threads``; else None."""
    if epoch == first_epoch or rate >= SLOW_EPOCH_FRACTION * first_rate:
        return None
    text = (f"epoch {epoch} trained at {rate:.1f} images/s, {first_rate / max(rate, 1e-9):.0f}x "
            f"slower than epoch {first_epoch} ({first_rate:.1f} images/s): other processes are "
            "probably using the CPUs (see top). ")
    if threads <= 1:
        return text + "This run already uses 1 torch thread: stop the other processes."
    return text + (f"This run uses {threads} torch threads and competes with them: stop it "
                   f"(Ctrl-C) and continue with fewer: chexnet-train --resume {run} "
                   f"--threads {max(1, threads // 2)}")


def train_epoch(net, loader, criterion, optimizer, scaler, device, use_amp, amp_dtype, epoch,
                config: TrainConfig, rank: int) -> tuple[float, int]:
    """One pass over the training loader; (mean loss, images seen). Tests replace it to
    interrupt a run between epochs."""
    net.train()
    total, seen = 0.0, 0
    limit = config.max_steps_per_epoch or len(loader)
    bar = tqdm(loader, total=min(limit, len(loader)), desc=f"epoch {epoch + 1}/{config.epochs}",
               unit="batch", disable=True if rank != 0 else None, dynamic_ncols=True,
               leave=False)
    for step, (x, y) in enumerate(bar):
        if step >= limit:
            break
        x = x.to(device, non_blocking=True)
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            loss = criterion(net(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.item() * len(x)
        seen += len(x)
        bar.set_postfix(loss=f"{total / seen:.4f}")
    return total / max(seen, 1), seen
