"""Rotation, mirroring and normalisation of whole batches on the training device.

The per-sample transforms of :mod:`hecktorseg.data.augmentation` run in the loader
workers on the CPU; on a fast GPU that makes the GPU wait. :class:`BatchAugmenter`
does the same work on a batch that already lies on the training device, with the same
torch operations (``affine_grid`` + ``grid_sample``, ``flip``), so it runs wherever the
batch is — CUDA or CPU — and the tests check it on the CPU.

Same draws, same distributions: :func:`draw_plan` asks each transform of the CPU pipeline
(:class:`~hecktorseg.data.RandomRotation`, :class:`~hecktorseg.data.SequentialRotation`,
:class:`~hecktorseg.data.RandomMirror`) for its random parameters with the generator the
dataset would use for that sample (seeded by ``(seed, epoch, index)``), in the same order.
The device path therefore applies exactly the rotations and flips the CPU path would have
applied to that sample; only the floating-point rounding of the interpolation may differ.

Normalisation follows :func:`hecktorseg.preprocessing.stack_channels` (CT clipped and
scaled, PET z-scored over the rotated PET field of view in float64), batched. One
difference, to keep the device free of host synchronisation: where a rotation leaves no
voxel of the PET field of view in the volume, the PET statistics fall back to all voxels
instead of raising.

:class:`DeviceVolumes` keeps a dataset's raw volumes on the device when they fit in a
share of its free memory, so a batch is gathered there without any copy from the host.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hecktorseg.data.augmentation import (
    Compose,
    RandomMirror,
    RandomRotation,
    Sample,
    SequentialRotation,
    Transform,
    affine_theta,
    rotation_matrix,
)
from hecktorseg.data.dataset import PreprocessedDataset
from hecktorseg.preprocessing import PET_EPS, PreprocessConfig

__all__ = [
    "CACHE_SHARE",
    "Affine",
    "BatchAugmenter",
    "DeviceVolumes",
    "Flip",
    "draw_plan",
    "normalize_batch",
    "supports_batching",
]

logger = logging.getLogger(__name__)

CACHE_SHARE = 0.25
"""Largest share of the device's free memory that :class:`DeviceVolumes` may fill."""


@attrs.frozen
class Affine:
    """One resampling of a sample through the 3×3 map ``matrix`` (z, y, x), with per-channel ``fill``."""

    matrix: Tensor
    fill: tuple[float, ...]


@attrs.frozen
class Flip:
    """Mirroring of a sample over the spatial ``axes`` (0, 1, 2 of ``(z, y, x)``)."""

    axes: tuple[int, ...]


Step = Affine | Flip


def _parts(transform: Transform | None) -> list[Transform]:
    if transform is None:
        return []
    if isinstance(transform, Compose):
        return [t for part in transform.transforms for t in _parts(part)]
    return [transform]


def supports_batching(transform: Transform | None) -> bool:
    """Whether every part of ``transform`` has a batched equivalent here (rotations, zoom, mirroring)."""
    return all(isinstance(t, RandomRotation | SequentialRotation | RandomMirror) for t in _parts(transform))


def draw_plan(transform: Transform | None, generator: torch.Generator) -> list[Step]:
    """The steps ``transform`` would apply to one sample, drawn with the same calls on ``generator``.

    Raises
    ------
    TypeError
        A part of ``transform`` has no batched equivalent (see :func:`supports_batching`).
    """
    steps: list[Step] = []
    for part in _parts(transform):
        if isinstance(part, RandomRotation):
            matrix = part.sample_matrix(generator)
            if matrix is not None:
                steps.append(Affine(matrix, part.image_fill))
        elif isinstance(part, SequentialRotation):
            for axis, angle in part.sample_steps(generator) or []:
                if angle:
                    angles = [0.0, 0.0, 0.0]
                    angles[axis] = float(angle)
                    steps.append(Affine(rotation_matrix(angles), part.image_fill))
        elif isinstance(part, RandomMirror):
            axes = part.sample_axes(generator)
            if axes:
                steps.append(Flip(tuple(axes)))
        else:
            raise TypeError(f"no batched version of {type(part).__name__}; use augment_device='cpu'")
    return steps


def _resample(image: Tensor, nearest: Tensor | None, steps: list[Affine]) -> tuple[Tensor, Tensor | None]:
    """Resample ``len(steps)`` samples at once (image linear, ``nearest`` channels nearest, 0 fill)."""
    spatial = image.shape[-3:]
    theta = torch.stack([affine_theta(step.matrix, spatial) for step in steps]).to(image.device)
    grid = F.affine_grid(theta, [len(steps), 1, *spatial], align_corners=False)
    fill = torch.tensor([step.fill for step in steps], dtype=image.dtype).to(image.device)
    fill = fill.reshape(len(steps), -1, 1, 1, 1)
    moved = F.grid_sample(image - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = moved + fill
    if nearest is None:
        return out, None
    return out, F.grid_sample(nearest, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _apply(
    image: Tensor, nearest: Tensor | None, plans: Sequence[list[Step]]
) -> tuple[Tensor, Tensor | None]:
    """Apply each sample's steps, step by step, batching the samples that resample at the same step."""
    for k in range(max((len(plan) for plan in plans), default=0)):
        affine = [
            (i, plan[k]) for i, plan in enumerate(plans) if k < len(plan) and isinstance(plan[k], Affine)
        ]
        if affine:
            index = torch.tensor([i for i, _ in affine], device=image.device)
            sub_nearest = nearest.index_select(0, index) if nearest is not None else None
            moved, moved_nearest = _resample(
                image.index_select(0, index),
                sub_nearest,
                [step for _, step in affine],  # type: ignore[misc]
            )
            image = image.index_copy(0, index, moved)
            if nearest is not None and moved_nearest is not None:
                nearest = nearest.index_copy(0, index, moved_nearest)
        flips = [(i, plan[k]) for i, plan in enumerate(plans) if k < len(plan) and isinstance(plan[k], Flip)]
        if flips:
            images, rest = list(image.unbind(0)), list(nearest.unbind(0)) if nearest is not None else []
            for i, step in flips:
                dims = [a + 1 for a in step.axes]  # type: ignore[union-attr]
                images[i] = torch.flip(images[i], dims=dims)
                if rest:
                    rest[i] = torch.flip(rest[i], dims=dims)
            image = torch.stack(images)
            nearest = torch.stack(rest) if rest else None
    return image, nearest


def normalize_batch(image: Tensor, config: PreprocessConfig, pet_fov: Tensor | None = None) -> Tensor:
    """Network input ``(N, 2, z, y, x)`` from raw [CT HU, PET SUV], as :func:`~hecktorseg.preprocessing.stack_channels` per sample.

    ``pet_fov`` ``(N, z, y, x)`` (bool) gives the voxels of the PET statistics when
    ``config.pet_stats == "fov"``; a sample whose mask selects nothing uses all voxels.
    """
    lo, hi = float(config.ct_clip[0]), float(config.ct_clip[1])
    ct = image[:, 0].clamp(lo, hi) / max(abs(lo), abs(hi))
    pet = image[:, 1]
    values = pet.double()
    dims = tuple(range(1, values.ndim))
    weight = torch.ones_like(values)
    if config.pet_stats == "fov" and pet_fov is not None:
        selected = pet_fov.to(values.dtype)
        empty = selected.sum(dim=dims, keepdim=True) == 0
        weight = torch.where(empty, weight, selected)
    count = weight.sum(dim=dims, keepdim=True)
    mean = (values * weight).sum(dim=dims, keepdim=True) / count
    std = (((values - mean) ** 2 * weight).sum(dim=dims, keepdim=True) / count).sqrt()
    pet_out = (pet - mean.float()) / (std + PET_EPS).float()
    return torch.stack([ct, pet_out], dim=1)


class BatchAugmenter:
    """Augment and normalise a raw batch on its own device, with the draws of the CPU pipeline.

    Parameters
    ----------
    transform
        The CPU pipeline (e.g. :func:`hecktorseg.training.build_augmentation`); its
        parameters and draws are reused (see :func:`draw_plan`).
    preprocess
        The dataset's preprocessing settings (CT clip, PET statistics).
    """

    def __init__(self, transform: Transform | None, preprocess: PreprocessConfig) -> None:
        if not supports_batching(transform):
            raise TypeError("this augmentation has no batched version; use augment_device='cpu'")
        self.transform = transform
        self.preprocess = preprocess

    def plans(self, seeds: Sequence[int]) -> list[list[Step]]:
        """Each sample's steps, drawn from a generator seeded with its seed (as the dataset does)."""
        return [draw_plan(self.transform, torch.Generator().manual_seed(int(seed))) for seed in seeds]

    def augment(self, batch: Sample, plans: Sequence[list[Step]]) -> Sample:
        """``batch`` (``image`` (N, C, ...), ``label`` and optional ``mask`` (N, 1, ...)) with ``plans`` applied.

        Images are resampled linearly, label and mask by nearest neighbour (filled with 0);
        the tensors of ``batch`` are not modified.
        """
        keys = [key for key in ("label", "mask") if key in batch]
        nearest = torch.cat([batch[key].float() for key in keys], dim=1) if keys else None
        image, moved = _apply(batch["image"], nearest, plans)
        out = dict(batch)
        out["image"] = image
        start = 0
        for key in keys:
            n = batch[key].shape[1]
            out[key] = moved[:, start : start + n].to(batch[key].dtype)  # type: ignore[index]
            start += n
        return out

    def __call__(self, batch: Sample, seeds: Sequence[int]) -> Sample:
        """Augmented, normalised ``{"image": (N, 2, ...), "label": (N, 1, ...)}`` for the samples' ``seeds``."""
        moved = self.augment(batch, self.plans(seeds))
        fov = moved["mask"][:, 0] > 0.5 if "mask" in moved else None
        return {
            "image": normalize_batch(moved["image"], self.preprocess, fov),
            "label": moved["label"].float(),
        }


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


class DeviceVolumes:
    """A dataset's raw volumes, kept on ``device`` when they fit (else read per batch from the host).

    Parameters
    ----------
    dataset
        The training dataset (its :meth:`~PreprocessedDataset.raw` arrays are used).
    device
        Where batches are wanted.
    share
        Largest share of the device's free memory the volumes may take (:data:`CACHE_SHARE`).
    """

    def __init__(
        self, dataset: PreprocessedDataset, device: torch.device, *, share: float = CACHE_SHARE
    ) -> None:
        self.dataset = dataset
        self.device = device
        first = dataset.raw(0)
        self.nbytes = len(dataset) * first.ct.size * (4 + 4 + 1 + 1)
        """Bytes that all volumes take on the device (CT and PET float32, label and mask one byte)."""
        budget = int(share * _free_bytes(device))
        self.cached = self.nbytes <= budget
        """Whether the volumes were copied to the device."""
        self._image: Tensor | None = None
        self._label: Tensor | None = None
        self._mask: Tensor | None = None
        if self.cached:
            shape = (len(dataset), 1, *first.ct.shape)
            self._image = torch.empty((len(dataset), 2, *first.ct.shape), dtype=torch.float32, device=device)
            self._label = torch.empty(shape, dtype=torch.uint8, device=device)
            self._mask = torch.empty(shape, dtype=torch.bool, device=device)
            for i in range(len(dataset)):
                raw = dataset.raw(i)
                self._image[i, 0].copy_(torch.from_numpy(raw.ct))
                self._image[i, 1].copy_(torch.from_numpy(raw.pet))
                self._label[i, 0].copy_(torch.from_numpy(raw.label))
                self._mask[i, 0].copy_(torch.from_numpy(raw.fov))
        logger.info(
            "training volumes (%.1f MB) %s on %s",
            self.nbytes / 1e6,
            "cached" if self.cached else f"read from the host per batch (budget {budget / 1e6:.0f} MB)",
            device,
        )

    def gather(self, indices: Sequence[int]) -> Sample:
        """The raw batch ``{"image", "label", "mask"}`` of ``indices`` on the device (new tensors)."""
        if self._image is not None and self._label is not None and self._mask is not None:
            index = torch.tensor(list(indices), device=self.device)
            return {
                "image": self._image.index_select(0, index),
                "label": self._label.index_select(0, index).float(),
                "mask": self._mask.index_select(0, index).float(),
            }
        raws = [self.dataset.raw(i) for i in indices]
        pin = self.device.type == "cuda"
        host = {
            "image": torch.from_numpy(np.stack([np.stack([r.ct, r.pet]) for r in raws])),
            "label": torch.from_numpy(np.stack([r.label[None] for r in raws]).astype(np.float32)),
            "mask": torch.from_numpy(np.stack([r.fov[None] for r in raws]).astype(np.float32)),
        }
        return {k: (v.pin_memory() if pin else v).to(self.device, non_blocking=pin) for k, v in host.items()}
