"""Datasets for training: preprocessed cases as tensors, augmentation, and synthetic phantoms.

- :class:`PreprocessedDataset` reads a preprocessed dataset (its manifest) and
  builds network input with :func:`hecktorseg.preprocessing.stack_channels`;
- :mod:`hecktorseg.data.augmentation`: the paper's random rotation and mirroring
  on tensors (:class:`RandomRotation`, :class:`RandomMirror`, :class:`Compose`);
- :mod:`hecktorseg.data.synthetic`: PET/CT phantoms in the HECKTOR layouts.
"""

from hecktorseg.data.augmentation import (
    Compose,
    RandomMirror,
    RandomRotation,
    Sample,
    Transform,
    affine_resample,
    rotation_matrix,
)
from hecktorseg.data.dataset import EpochTaggedSampler, PreprocessedDataset, sample_seed
from hecktorseg.data.synthetic import Phantom, SyntheticConfig, make_phantom, write_synthetic_dataset

__all__ = [
    "Compose",
    "EpochTaggedSampler",
    "Phantom",
    "PreprocessedDataset",
    "RandomMirror",
    "RandomRotation",
    "Sample",
    "SyntheticConfig",
    "Transform",
    "affine_resample",
    "make_phantom",
    "rotation_matrix",
    "sample_seed",
    "write_synthetic_dataset",
]
