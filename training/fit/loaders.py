"""Data loaders of a training run: cached crops -> tensors, and how the training split is drawn.

The training loader shuffles, oversamples (``--balance oversample``), resamples (the hospital CAD
paper's per-class counts, :mod:`chexnet.training.data.resample`) or shards across torchrun
processes; :func:`seed_epoch` makes every epoch's draws a function of (seed, epoch, rank), so a
resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

from chexnet.inference.preprocessing import PreprocessSpec, normalise
from chexnet.training.data.cache import ImageCache
from chexnet.training.data.resample import ResamplingSampler
from chexnet.training.fit.config import TrainConfig


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


def make_train_loader(dataset: CachedImages, config: TrainConfig, world: int, rank: int,
                 y: np.ndarray, labels: tuple[str, ...] = ()) -> DataLoader:
    """The training split's loader (``config`` already passed ``check_config``)."""
    if world > 1:
        if config.balance == "oversample" or config.resampling:
            raise ValueError("--balance oversample and resampling are not supported with "
                             "torchrun; use --balance pos_weight")
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=config.seed)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler,
                          num_workers=config.workers, pin_memory=pin_memory(config))
    if config.resampling:
        sampler = ResamplingSampler(y, labels, seed=config.seed,
                                    min_per_class=config.min_per_class,
                                    max_normal=config.max_normal,
                                    normal_fraction=config.normal_fraction)
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler,
                          num_workers=config.workers, pin_memory=pin_memory(config))
    if config.balance == "oversample":
        sampler = WeightedRandomSampler(oversampling_weights(y), num_samples=len(y),
                                        replacement=True,
                                        generator=torch.Generator().manual_seed(config.seed))
        return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler,
                          num_workers=config.workers, pin_memory=pin_memory(config))
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=True,
                      num_workers=config.workers, drop_last=len(dataset) > config.batch_size,
                      generator=torch.Generator().manual_seed(config.seed),
                      pin_memory=pin_memory(config))


def make_val_loader(dataset: CachedImages, config: TrainConfig) -> DataLoader:
    """The validation split in order, never shuffled or resampled."""
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=False,
                      num_workers=config.workers, pin_memory=pin_memory(config))


def pin_memory(config: TrainConfig) -> bool:
    """Page-locked batches (faster, asynchronous host-to-GPU copies) when training on CUDA."""
    return torch.cuda.is_available() and not config.device.startswith("cpu")


def seed_epoch(seed: int, epoch: int, rank: int, loader: DataLoader) -> None:
    """Seed torch, numpy and the loader's sampler for ``epoch``."""
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
