"""Datasets for training: preprocessed cases as tensors, augmentation, and synthetic phantoms.

- :class:`PreprocessedDataset` reads a preprocessed dataset (its manifest) and
  builds network input with :func:`hecktorseg.preprocessing.stack_channels`;
- :mod:`hecktorseg.data.augmentation`: random rotation and mirroring on tensors
  (:class:`RandomRotation`, :class:`SequentialRotation` — the paper's —,
  :class:`RandomMirror`, :class:`Compose`);
- :mod:`hecktorseg.data.synthetic`: PET/CT phantoms in the HECKTOR layouts.

The synthetic-data names are imported eagerly; the torch-based ones on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hecktorseg._lazy import lazy_exports
from hecktorseg.data.synthetic import Phantom, SyntheticConfig, make_phantom, write_synthetic_dataset

if TYPE_CHECKING:
    from hecktorseg.data.augmentation import (
        Compose,
        RandomMirror,
        RandomRotation,
        Sample,
        SequentialRotation,
        Transform,
        affine_resample,
        rotation_matrix,
    )
    from hecktorseg.data.dataset import EpochTaggedSampler, PreprocessedDataset, sample_seed

# The torch-based names load on first access, so synthesising data (and the CLI) stays fast.
_LAZY = {
    "Compose": "augmentation",
    "RandomMirror": "augmentation",
    "RandomRotation": "augmentation",
    "Sample": "augmentation",
    "SequentialRotation": "augmentation",
    "Transform": "augmentation",
    "affine_resample": "augmentation",
    "rotation_matrix": "augmentation",
    "EpochTaggedSampler": "dataset",
    "PreprocessedDataset": "dataset",
    "sample_seed": "dataset",
}

__all__ = [
    "Compose",
    "EpochTaggedSampler",
    "Phantom",
    "PreprocessedDataset",
    "RandomMirror",
    "RandomRotation",
    "Sample",
    "SequentialRotation",
    "SyntheticConfig",
    "Transform",
    "affine_resample",
    "make_phantom",
    "rotation_matrix",
    "sample_seed",
    "write_synthetic_dataset",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
