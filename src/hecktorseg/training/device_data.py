"""Training batches built on the training device: where augmentation runs, and the batches of an epoch.

``augment_device`` (:class:`~hecktorseg.training.TrainConfig`) chooses between the loader
workers (``"cpu"``: per sample, as before) and the training device (``"cuda"``: whole batches
with :class:`~hecktorseg.data.device_augmentation.BatchAugmenter`, the volumes kept there by
:class:`~hecktorseg.data.device_augmentation.DeviceVolumes` when they fit). ``"auto"`` takes
the training device when it is CUDA. Either way sample ``i`` of epoch ``e`` gets the rotation
and mirroring drawn from ``(seed, e, i)``, and the batches follow the training sampler's order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset

from hecktorseg.data import PreprocessedDataset, sample_seed
from hecktorseg.data.device_augmentation import BatchAugmenter, DeviceVolumes, supports_batching
from hecktorseg.errors import ConfigError
from hecktorseg.training.config import TrainConfig

__all__ = ["DeviceBatches", "augment_device_name", "augment_on_device", "device_batches_for"]

logger = logging.getLogger(__name__)


def augment_on_device(config: TrainConfig, device: torch.device) -> bool:
    """Whether augmentation runs batched on the training ``device`` (else in the loader workers).

    Raises
    ------
    ConfigError
        ``augment_device="cuda"`` while training on another device.
    """
    if config.augment_device == "cuda" and device.type != "cuda":
        raise ConfigError(
            f"train.augment_device: 'cuda' needs training on CUDA, but this run trains on {device}",
            hint="use augment_device='auto' or 'cpu'",
        )
    return config.augment_device == "cuda" or (config.augment_device == "auto" and device.type == "cuda")


class DeviceBatches:
    """The training batches of an epoch, gathered and augmented on ``device``.

    Parameters
    ----------
    dataset
        The training dataset; its ``transform`` is the CPU pipeline whose draws are reused.
    device
        The training device.
    batch_size
        Samples per batch.
    """

    def __init__(self, dataset: PreprocessedDataset, device: torch.device, batch_size: int) -> None:
        self.dataset = dataset
        self.device = device
        self.batch_size = batch_size
        self.augmenter = BatchAugmenter(dataset.transform, dataset.manifest.config)
        self.volumes = DeviceVolumes(dataset, device)

    def batches(self, keys: Iterable[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        """Batches of ``(epoch, index)`` keys (a training sampler), in order, ``batch_size`` at a time."""
        chunk: list[tuple[int, int]] = []
        for key in keys:
            chunk.append(key)
            if len(chunk) == self.batch_size:
                yield self._batch(chunk)
                chunk = []
        if chunk:
            yield self._batch(chunk)

    def _batch(self, keys: list[tuple[int, int]]) -> dict[str, Any]:
        indices = [int(index) for _, index in keys]
        seeds = [sample_seed(self.dataset.seed, int(epoch), int(index)) for epoch, index in keys]
        out: dict[str, Any] = dict(self.augmenter(self.volumes.gather(indices), seeds))
        out["patient_id"] = [self.dataset.patient_ids[i] for i in indices]
        return out


def device_batches_for(
    config: TrainConfig, train_dataset: Dataset[Any], device: torch.device
) -> DeviceBatches | None:
    """The :class:`DeviceBatches` of a run, or ``None`` where the loader workers augment.

    Augmentation stays in the workers when ``augment_device`` says so, when the dataset is
    not a :class:`~hecktorseg.data.PreprocessedDataset` with an augmentation, or when a part
    of the augmentation has no batched version (logged).
    """
    if not augment_on_device(config, device):
        return None
    transform = getattr(train_dataset, "transform", None)
    if not isinstance(train_dataset, PreprocessedDataset) or transform is None:
        logger.info("augmentation stays in the loader: no augmentation of a preprocessed dataset to batch")
        return None
    if not supports_batching(transform):
        logger.warning("augmentation %r has no batched version: it runs in the loader workers", transform)
        return None
    return DeviceBatches(train_dataset, device, config.batch_size)


def augment_device_name(train_dataset: Dataset[Any], batches: DeviceBatches | None) -> str:
    """Where augmentation runs: the device of ``batches`` (``"cpu (batched)"`` on the CPU), ``"cpu"``
    (the loader workers) or ``"none"``."""
    if batches is not None:
        return str(batches.device) if batches.device.type != "cpu" else "cpu (batched)"
    return "cpu" if getattr(train_dataset, "transform", None) is not None else "none"
