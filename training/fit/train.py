"""The CheXNet training recipe (Rajpurkar et al. 2017) and its options.

Defaults follow the paper: DenseNet-121, C-way linear + sigmoid head, 224x224 input, ImageNet
mean/std, random horizontal flip, Adam (beta 0.9, 0.999), lr 0.001, batch 16, learning rate / 10
when the validation loss plateaus after an epoch, keep the lowest validation loss.

Single-label task (the hospital CAD paper's single-disease classification): softmax +
cross-entropy over images carrying exactly one label; ``--min-per-class``/``--max-normal``/
``--normal-fraction`` resample the training split (:mod:`.resample`).

On CUDA: AMP (bf16 where supported, else fp16 with a gradient scaler) and channels_last.
Distributed: launch with ``torchrun``; PyTorch's DistributedDataParallel does the work.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler
from tqdm import tqdm

from chexnet.inference.preprocessing import PreprocessSpec, normalise
from chexnet.training.data.cache import ImageCache
from chexnet.training.data.dataset import Splits
from chexnet.training.data.resample import ResamplingSampler
from chexnet.training.evaluation.metrics import auroc
from chexnet.training.fit.cam_model import build_model
from chexnet.training.fit.run_folder import RunFolder

log = logging.getLogger(__name__)

BALANCE_MODES = ("none", "pos_weight", "oversample")


@dataclass
class TrainConfig:
    arch: str = "densenet121"
    labels: str = "all"
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 16
    workers: int = 2
    balance: str = "none"
    init: str | None = None  # "imagenet:PATH"
    size: int = 224
    resize: int = 224
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    plateau_patience: int = 0
    device: str = "auto"
    amp: bool = True
    max_steps_per_epoch: int | None = None  # tests and smoke runs only
    task: str = "multi-label"  # or "single-label": softmax + cross-entropy
    min_per_class: int | None = None  # resampling (training split only), off by default
    max_normal: int | None = None
    normal_fraction: float | None = None
    extra: dict = field(default_factory=dict)

    def spec(self) -> PreprocessSpec:
        return PreprocessSpec(size=self.size, resize=self.resize)

    @property
    def resampling(self) -> bool:
        return any(v is not None for v in (self.min_per_class, self.max_normal,
                                           self.normal_fraction))

    def to_dict(self) -> dict:
        return asdict(self)


class CachedImages(Dataset):
    """Rows of an image cache -> (normalised image [3,S,S], labels [C]); the deterministic part
    is the inference room's ``normalise``; training adds only the random horizontal flip."""

    def __init__(self, cache: ImageCache, rows: np.ndarray, y: np.ndarray, spec: PreprocessSpec,
                 flip: bool) -> None:
        self.cache, self.rows, self.y, self.spec, self.flip = cache, rows, y, spec, flip

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        crop = np.asarray(self.cache.array[self.rows[i]])
        if self.flip and np.random.random() < 0.5:
            crop = crop[:, ::-1]
        x = normalise(np.ascontiguousarray(crop), self.spec)
        return torch.from_numpy(x), torch.from_numpy(self.y[i].astype(np.float32))


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


def train(config: TrainConfig, splits: Splits, cache: ImageCache, run: RunFolder) -> dict:
    """Train, validating every epoch; returns the run summary (also written to run.json)."""
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
    train_loader = _loader(train_set, config, world, rank, y_train, table.labels)
    resampling = (train_loader.sampler.plan.summary()
                  if isinstance(train_loader.sampler, ResamplingSampler) else None)
    if resampling and rank == 0:
        log.info("resampling the training split: %d draws per epoch from %d images (%s)",
                 resampling["epoch_size"], len(train_rows),
                 ", ".join(f"{g} {v['images']}->{v['drawn_per_epoch']}"
                           for g, v in resampling["per_class"].items()))
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False,
                            num_workers=config.workers)
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, config.epochs):
            # Randomness is a function of (seed, epoch, rank), so a resumed run draws the same
            # shuffles and flips as an uninterrupted one would.
            _seed_epoch(config.seed, epoch, rank, train_loader)
            t0 = time.perf_counter()
            train_loss, seen = _train_epoch(net, train_loader, criterion, optimizer, scaler,
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


def make_criterion(config: TrainConfig, pos_weight: torch.Tensor | None = None) -> nn.Module:
    """BCE-with-logits per label (multi-label), or cross-entropy over the classes
    (single-label; the targets are one-hot rows, which ``CrossEntropyLoss`` takes as class
    probabilities)."""
    if config.task == "single-label":
        if config.balance != "none":
            raise ValueError(f"--balance {config.balance} is for multi-label training; for "
                             "single-label use --min-per-class / --max-normal (resampling)")
        return nn.CrossEntropyLoss()
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)


def check_config(config: TrainConfig) -> None:
    """Refuse contradictory options before any data work (one-line ValueErrors)."""
    make_criterion(config)
    if config.resampling and config.balance == "oversample":
        raise ValueError("--balance oversample and resampling (--min-per-class, --max-normal, "
                         "--normal-fraction) both rebalance the classes: choose one")
    if config.normal_fraction is not None and not 0 < config.normal_fraction < 1:
        raise ValueError(f"--normal-fraction must be between 0 and 1, not "
                         f"{config.normal_fraction}")


def _loader(dataset: CachedImages, config: TrainConfig, world: int, rank: int,
            y: np.ndarray, labels: tuple[str, ...] = ()) -> DataLoader:
    if config.resampling and config.balance == "oversample":
        raise ValueError("--balance oversample and resampling (--min-per-class, --max-normal, "
                         "--normal-fraction) both rebalance the classes: choose one")
    if world > 1:
        if config.balance == "oversample" or config.resampling:
            raise ValueError("--balance oversample and resampling are not supported with "
                             "torchrun; use --balance pos_weight")
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=config.seed)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler,
                          num_workers=config.workers, pin_memory=torch.cuda.is_available())
    if config.resampling:
        sampler = ResamplingSampler(y, labels, seed=config.seed,
                                    min_per_class=config.min_per_class,
                                    max_normal=config.max_normal,
                                    normal_fraction=config.normal_fraction)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler,
                          num_workers=config.workers)
    if config.balance == "oversample":
        sampler = WeightedRandomSampler(oversampling_weights(y), num_samples=len(y),
                                        replacement=True,
                                        generator=torch.Generator().manual_seed(config.seed))
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler,
                          num_workers=config.workers)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                      num_workers=config.workers, drop_last=len(dataset) > config.batch_size,
                      generator=torch.Generator().manual_seed(config.seed))


def _seed_epoch(seed: int, epoch: int, rank: int, loader: DataLoader) -> None:
    base = (seed * 1_000_003 + epoch) * 64 + rank
    torch.manual_seed(base)
    np.random.seed(base % 2**32)
    if isinstance(loader.sampler, DistributedSampler | ResamplingSampler):
        loader.sampler.set_epoch(epoch)
    elif loader.generator is not None:
        loader.generator.manual_seed(base)
    elif getattr(loader.sampler, "generator", None) is not None:
        loader.sampler.generator.manual_seed(base)


def oversampling_weights(y: np.ndarray) -> torch.Tensor:
    """Per-image sampling weight: the inverse frequency of its rarest positive label (images
    with no positive label weigh as the negative class), so each label's positives are drawn
    about as often as its negatives."""
    pos = np.maximum(y.sum(axis=0), 1).astype(np.float64)
    neg = np.maximum(len(y) - y.sum(axis=0), 1).astype(np.float64)
    w = np.where(y > 0, 1.0 / pos, 0.0).max(axis=1)
    w = np.where(w > 0, w, 1.0 / neg.min())
    return torch.as_tensor(w / w.sum(), dtype=torch.double)


def _train_epoch(net, loader, criterion, optimizer, scaler, device, use_amp, amp_dtype, epoch,
                 config: TrainConfig, rank: int) -> tuple[float, int]:
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


@torch.no_grad()
def evaluate_loss(model, loader, criterion, device, use_amp=False, amp_dtype=torch.float16
                  ) -> tuple[float, np.ndarray]:
    """Mean validation loss and probabilities [N, C] (sigmoid, or softmax for single-label)."""
    model.eval()
    total, n, probs = 0.0, 0, []
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            logits = model(x).float()
        total += float(criterion(logits, y)) * len(x)
        n += len(x)
        probs.append(model.activation(logits).cpu().numpy())
    return total / max(n, 1), np.concatenate(probs) if probs else np.zeros((0, 0))


def validation_aurocs(y: np.ndarray, probs: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Per-label AUROC (None where a label has no positive or no negative) and their mean."""
    out: dict[str, float | None] = {lb: auroc(y[:, j], probs[:, j])
                                    for j, lb in enumerate(labels)}
    defined = [v for v in out.values() if v is not None]
    out["mean"] = float(np.mean(defined)) if defined else None
    return out
