"""The CheXNet training loop (Rajpurkar et al. 2017) over a run folder.

Defaults follow the paper: DenseNet-121, C-way linear + sigmoid head, 224x224 input, ImageNet
mean/std, random horizontal flip, Adam (beta 0.9, 0.999), lr 0.001, batch 16, learning rate / 10
when the validation loss plateaus after an epoch, keep the lowest validation loss.

Single-label task (the hospital CAD paper's single-disease classification): softmax +
cross-entropy over images carrying exactly one label; ``--min-per-class``/``--max-normal``/
``--normal-fraction`` resample the training split (:mod:`.loaders`).

On CUDA: AMP (bf16 where supported, else fp16 with a gradient scaler) and channels_last.
Distributed: launch with ``torchrun``; PyTorch's DistributedDataParallel does the work.
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
from chexnet.training.fit.cam_model import build_model
from chexnet.training.fit.config import TrainConfig, check_config
from chexnet.training.fit.loaders import (
    CachedImages,
    make_train_loader,
    make_val_loader,
    seed_epoch,
)
from chexnet.training.fit.run_folder import RunFolder
from chexnet.training.fit.validation import evaluate_loss, validation_aurocs

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
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)


def train(config: TrainConfig, splits: Splits, cache: ImageCache, run: RunFolder) -> dict:
    """Train, validating every epoch; returns the run summary (also written to run.json)."""
    check_config(config)
    rank, world = init_distributed()
    device = _device(config.device) if world == 1 else torch.device(
        f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(config.seed + rank)
    np.random.seed(config.seed + rank)
    spec, table = config.spec(), splits.table
    usable = np.setdiff1d(np.arange(len(table)), cache.failed)
    train_rows = np.intersect1d(splits.train, usable)
    val_rows = np.intersect1d(splits.val, usable)
    n_classes = len(table.labels)
    init = Path(config.init.split(":", 1)[1]) if config.init else None
    model = build_model(config.arch, n_classes, init, task=config.task).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    amp_dtype = (torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16)
    use_amp = cuda and config.amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    y_train = table.y[train_rows]
    pos = y_train.sum(axis=0).astype(np.float64)
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
    train_loader = make_train_loader(train_set, config, world, rank, y_train, table.labels)
    resampling = (train_loader.sampler.plan.summary()
                  if isinstance(train_loader.sampler, ResamplingSampler) else None)
    if resampling and rank == 0:
        log.info("resampling the training split: %d draws per epoch from %d images (%s)",
                 resampling["epoch_size"], len(train_rows),
                 ", ".join(f"{g} {v['images']}->{v['drawn_per_epoch']}"
                           for g, v in resampling["per_class"].items()))
    val_loader = make_val_loader(val_set, config)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, config.epochs):
            # Randomness is a function of (seed, epoch, rank), so a resumed run draws the same
            # shuffles and flips as an uninterrupted one would.
            seed_epoch(config.seed, epoch, rank, train_loader)
            t0 = time.perf_counter()
            train_loss, seen = train_epoch(net, train_loader, criterion, optimizer, scaler,
                                           device, use_amp, amp_dtype, epoch, config, rank)
            val_loss, val_probs = evaluate_loss(model, val_loader, criterion, device, use_amp,
                                                amp_dtype)
            scheduler.step(val_loss)
            record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss,
                      "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0,
                      "train_images_per_s": seen * world / (time.perf_counter() - t0),
                      "val_auroc": validation_aurocs(table.y[val_rows], val_probs, table.labels)}
            if resampling and epoch == start_epoch:
                record["resampling"] = resampling
            if rank == 0:
                if val_loss < best["val_loss"]:
                    best = {"val_loss": val_loss, "epoch": epoch + 1}
                    run.save_best(model, config, table.labels, epoch + 1)
                    run.save_val_predictions(val_rows, val_probs, table, epoch + 1)
                run.log_epoch(record)
                run.save_last(model, optimizer, scheduler, scaler, epoch, best, config)
                log.info("epoch %d: train loss %.4f, val loss %.4f, mean val AUROC %s",
                         epoch + 1, train_loss, val_loss, record["val_auroc"].get("mean"))
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
