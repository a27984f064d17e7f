"""The data loaders of a training run: a shuffled, epoch-tagged training loader and a sharded validation one."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from hecktorseg.data import EpochTaggedSampler
from hecktorseg.training.config import TrainConfig
from hecktorseg.training.distributed import DistContext

__all__ = ["make_loaders"]

logger = logging.getLogger(__name__)


def make_loaders(
    config: TrainConfig,
    train_dataset: Dataset[Any],
    val_dataset: Dataset[Any],
    ctx: DistContext,
    device: torch.device,
) -> tuple[EpochTaggedSampler, DataLoader[Any], DataLoader[Any]]:
    """The training sampler and loader, and the validation loader of this process.

    The training data are shuffled with ``config.seed`` (and the epoch) and split over the
    processes; each process validates every ``world_size``-th case.

    Returns
    -------
    tuple
        ``(train_sampler, train_loader, val_loader)``; call ``train_sampler.set_epoch(e)``
        before each epoch.
    """
    sampler: DistributedSampler[Any] = DistributedSampler(
        train_dataset,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=False,
    )
    train_sampler = EpochTaggedSampler(sampler)
    pin = device.type == "cuda"
    # More loader processes than cores only adds contention (and a torch warning); the
    # augmentation is seeded per (seed, epoch, sample), so the count never changes results.
    workers = min(config.num_workers, os.cpu_count() or 1)
    if workers < config.num_workers:
        logger.info("num_workers %d capped to the %d CPU cores", config.num_workers, workers)
    train_loader: DataLoader[Any] = DataLoader(
        train_dataset,
        batch_size=config.batch_size,
        sampler=train_sampler,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=workers > 0,
        drop_last=False,
    )
    shard = list(range(ctx.rank, len(val_dataset), ctx.world_size))  # type: ignore[arg-type]
    val_loader: DataLoader[Any] = DataLoader(
        Subset(val_dataset, shard),
        batch_size=config.batch_size,
        shuffle=False,
        num_workers=min(workers, max(1, len(shard))) if workers > 0 else 0,
        pin_memory=pin,
        persistent_workers=workers > 0,
    )
    return train_sampler, train_loader, val_loader
