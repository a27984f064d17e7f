"""Datasets for training: preprocessed cases as tensors, augmentation, and synthetic phantoms.

- :class:`PreprocessedDataset` reads a preprocessed dataset (its manifest) and
  builds network input with :func:`hecktorseg.preprocessing.stack_channels`;
- :mod:`hecktorseg.data.augmentation`: random rotation and mirroring on tensors
  (:class:`RandomRotation`, :class:`SequentialRotation` — the paper's —,
  :class:`RandomMirror`, :class:`Compose`); :class:`BatchAugmenter` does the same on whole
  batches on the training device, with :class:`DeviceVolumes` keeping the volumes there;
- :mod:`hecktorseg.data.patches`: training patches with foreground over-sampling
  (:class:`PatchSampler`);
- :mod:`hecktorseg.data.synthetic`: PET/CT phantoms in the HECKTOR layouts;
  :mod:`hecktorseg.data.synthetic_dicom`: the same as a DICOM export (needs the ``dicom`` extra).

The synthetic-data names are imported eagerly; the torch-based ones on first use.
``_EXPORTS`` is the one list of public names (name → sub-module); ``__all__`` and the
lazy imports derive from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hecktorseg._lazy import lazy_exports
from hecktorseg.data.synthetic import Phantom as Phantom
from hecktorseg.data.synthetic import SyntheticConfig as SyntheticConfig
from hecktorseg.data.synthetic import make_phantom as make_phantom
from hecktorseg.data.synthetic import write_synthetic_dataset as write_synthetic_dataset

if TYPE_CHECKING:
    from hecktorseg.data.augmentation import Compose as Compose
    from hecktorseg.data.augmentation import RandomMirror as RandomMirror
    from hecktorseg.data.augmentation import RandomRotation as RandomRotation
    from hecktorseg.data.augmentation import Sample as Sample
    from hecktorseg.data.augmentation import SequentialRotation as SequentialRotation
    from hecktorseg.data.augmentation import Transform as Transform
    from hecktorseg.data.augmentation import affine_resample as affine_resample
    from hecktorseg.data.augmentation import rotation_matrix as rotation_matrix
    from hecktorseg.data.dataset import EpochTaggedSampler as EpochTaggedSampler
    from hecktorseg.data.dataset import PreprocessedDataset as PreprocessedDataset
    from hecktorseg.data.dataset import sample_seed as sample_seed
    from hecktorseg.data.device_augmentation import BatchAugmenter as BatchAugmenter
    from hecktorseg.data.device_augmentation import DeviceVolumes as DeviceVolumes
    from hecktorseg.data.patches import PatchSampler as PatchSampler
    from hecktorseg.data.synthetic_dicom import write_synthetic_dicom as write_synthetic_dicom

# The one list of public names: name → sub-module that defines it. The torch-based names load
# on first access, so synthesising data (and the CLI) stays fast.
_EXPORTS = {
    "Compose": "augmentation",
    "RandomMirror": "augmentation",
    "RandomRotation": "augmentation",
    "Sample": "augmentation",
    "SequentialRotation": "augmentation",
    "Transform": "augmentation",
    "affine_resample": "augmentation",
    "rotation_matrix": "augmentation",
    "EpochTaggedSampler": "dataset",
    "PatchSampler": "patches",
    "PreprocessedDataset": "dataset",
    "sample_seed": "dataset",
    "BatchAugmenter": "device_augmentation",
    "DeviceVolumes": "device_augmentation",
    "Phantom": "synthetic",
    "SyntheticConfig": "synthetic",
    "make_phantom": "synthetic",
    "write_synthetic_dataset": "synthetic",
    "write_synthetic_dicom": "synthetic_dicom",
}

__all__ = list(_EXPORTS)  # built from the one list above

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
