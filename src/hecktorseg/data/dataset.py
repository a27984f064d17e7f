"""A PyTorch dataset over a preprocessed dataset folder (its ``manifest.json``).

Network input is built by :func:`hecktorseg.preprocessing.stack_channels` — the same
function inference uses — so training and inference can never disagree on the
channel order ([CT, PET]) or the normalisation. Augmentation (if any) acts on the
raw HU / SUV volumes *before* normalisation, as in the paper; see
:mod:`hecktorseg.data.augmentation`.

Randomness is reproducible and independent of the number of loader workers: the
augmentation of sample ``i`` in epoch ``e`` is drawn from a generator seeded with
``(seed, e, i)`` (see :func:`sample_seed`). The epoch reaches the workers either
through :meth:`PreprocessedDataset.set_epoch` or, more robustly, in the index
itself: ``dataset[(epoch, i)]`` (:class:`EpochTaggedSampler` yields such keys).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from hecktorseg.data.augmentation import Sample, Transform
from hecktorseg.errors import DataError
from hecktorseg.io import image_to_array, read_image
from hecktorseg.preprocessing import pet_fov_mask, read_manifest, stack_channels
from hecktorseg.typing import PathLike

__all__ = ["EpochTaggedSampler", "PreprocessedDataset", "RawCase", "sample_seed"]

logger = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for sample ``index`` of ``epoch`` of a run seeded with ``seed``.

    Derived with :class:`numpy.random.SeedSequence`, so nearby triples give
    unrelated streams.
    """
    state = np.random.SeedSequence([seed & _MASK64, epoch & _MASK64, index & _MASK64]).generate_state(
        1, np.uint64
    )
    return int(state[0]) & ((1 << 63) - 1)


class RawCase:
    """Raw (un-normalised) arrays of one case, (z, y, x), as :meth:`PreprocessedDataset.raw` gives them.

    Attributes
    ----------
    ct
        CT in HU.
    pet
        PET in SUV.
    label
        Label values.
    fov
        Where the PET field of view reaches (True inside).
    """

    __slots__ = ("ct", "fov", "label", "pet")

    def __init__(self, ct: np.ndarray, pet: np.ndarray, label: np.ndarray, fov: np.ndarray) -> None:
        self.ct = ct
        self.pet = pet
        self.label = label
        self.fov = fov


class PreprocessedDataset(Dataset[dict[str, Any]]):
    """Cases of a preprocessed dataset as network-ready tensors.

    Items are dicts ``{"image": float32 (2, z, y, x) [CT, PET] normalised,
    "label": float32 (1, z, y, x) label values, "patient_id": str}``.

    Parameters
    ----------
    data_dir
        Folder written by :func:`hecktorseg.preprocessing.preprocess_dataset`
        (with ``manifest.json``).
    patient_ids
        The cases to use (default: all cases of the manifest, sorted).
    transform
        Augmentation applied to the raw sample (HU / SUV) before normalisation,
        called as ``transform(sample, generator)``; ``None`` for validation.
    cache
        Read every case once, now, and keep the raw arrays in memory (shared
        copy-on-write with loader workers); otherwise read the files on each access.
    seed
        Seed of the augmentation (combined with the epoch and the index).

    Raises
    ------
    DataError
        If the manifest is missing, a requested case is not in it or has no label.
    """

    def __init__(
        self,
        data_dir: PathLike,
        patient_ids: Sequence[str] | None = None,
        *,
        transform: Transform | None = None,
        cache: bool = True,
        seed: int = 0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.manifest = read_manifest(self.data_dir)
        entries = self.manifest.entries
        if patient_ids is None:
            patient_ids = sorted(entries)
        missing = [pid for pid in patient_ids if pid not in entries]
        if missing:
            raise DataError(
                f"{len(missing)} case(s) not in the manifest: {', '.join(missing[:5])}",
                path=self.data_dir / "manifest.json",
                hint="check the split or preprocess these cases",
            )
        unlabelled = [pid for pid in patient_ids if entries[pid].label_path is None]
        if unlabelled:
            raise DataError(
                f"{len(unlabelled)} case(s) have no label: {', '.join(unlabelled[:5])}",
                path=self.data_dir / "manifest.json",
                hint="training needs ground-truth masks; preprocess a labelled dataset",
            )
        self.patient_ids: list[str] = list(patient_ids)
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self._cache: dict[str, RawCase] | None = None
        if cache:
            self._cache = {pid: self._read(pid) for pid in self.patient_ids}

    def __len__(self) -> int:
        return len(self.patient_ids)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch used to seed augmentation for plain integer indices."""
        self.epoch = int(epoch)

    def _read(self, pid: str) -> RawCase:
        entry = self.manifest.entries[pid]
        ct = image_to_array(read_image(entry.ct_path, kind="ct")).astype(np.float32, copy=False)
        pet = image_to_array(read_image(entry.pet_path, kind="pet")).astype(np.float32, copy=False)
        if entry.label_path is None:
            raise DataError(f"case {pid} has no label", path=self.data_dir / "manifest.json")
        label = image_to_array(read_image(entry.label_path, kind="label")).astype(np.uint8, copy=False)
        if not ct.shape == pet.shape == label.shape:
            raise DataError(
                f"CT {ct.shape}, PET {pet.shape} and label {label.shape} grids differ for {pid}",
                path=entry.ct_path,
                hint="preprocess the case again",
            )
        fov = np.asarray(pet_fov_mask(entry.pet_geometry, entry.reference), dtype=bool)
        return RawCase(ct, pet, label, fov)

    def raw(self, index: int) -> RawCase:
        """The raw (HU, SUV, label, PET field of view) arrays of case ``index``."""
        pid = self.patient_ids[index]
        if self._cache is not None:
            return self._cache[pid]
        return self._read(pid)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """Item ``key`` (an index, or ``(epoch, index)`` to seed augmentation explicitly)."""
        if isinstance(key, tuple):
            epoch, index = int(key[0]), int(key[1])
        else:
            epoch, index = self.epoch, int(key)
        raw = self.raw(index)
        config = self.manifest.config
        if self.transform is None:
            image = stack_channels(raw.ct, raw.pet, config, pet_fov=raw.fov)
            label = torch.from_numpy(raw.label.astype(np.float32))[None]
        else:
            generator = torch.Generator().manual_seed(sample_seed(self.seed, epoch, index))
            sample: Sample = {
                "image": torch.from_numpy(np.stack([raw.ct, raw.pet])),
                "label": torch.from_numpy(raw.label.astype(np.float32))[None],
                "mask": torch.from_numpy(raw.fov.astype(np.float32))[None],
            }
            sample = self.transform(sample, generator)
            moved = sample["image"].numpy()
            fov = sample["mask"][0].numpy() > 0.5 if "mask" in sample else None
            image = stack_channels(moved[0], moved[1], config, pet_fov=fov)
            label = sample["label"].contiguous()
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
            "label": label,
            "patient_id": self.patient_ids[index],
        }


class EpochTaggedSampler(Sampler[tuple[int, int]]):
    """Wrap an index sampler so it yields ``(epoch, index)`` keys.

    The epoch then travels with every index to the loader workers (which may be
    persistent), so augmentation is seeded by ``(seed, epoch, index)`` whatever the
    number of workers. :meth:`set_epoch` is forwarded to the wrapped sampler
    (e.g. :class:`torch.utils.data.DistributedSampler`, which reshuffles per epoch).

    Parameters
    ----------
    sampler
        Sampler of integer indices.
    """

    def __init__(self, sampler: Sampler[int]) -> None:
        self.sampler = sampler
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch attached to the keys (and the wrapped sampler's epoch)."""
        self.epoch = int(epoch)
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in self.sampler:
            yield (epoch, int(index))

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]
