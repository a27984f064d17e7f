"""Preprocessing: PET/CT (and labels) onto one reference grid in the head-and-neck box, and back.

- :class:`PreprocessConfig` — every setting (the successor of the original ``make_dataset.yaml``).
- :func:`preprocess_case` / :func:`preprocess_images` — one case in memory;
  :func:`preprocess_dataset` — a whole dataset on disk (parallel, resumable, in parts),
  described by a manifest (:func:`read_manifest`, :func:`merge_manifests`).
- :func:`reference_geometry`, :func:`pet_fov_mask`, :func:`to_original_grid` — the grid and the
  inverse mapping of predictions onto the original CT grid.
- :func:`normalize_ct`, :func:`normalize_pet`, :func:`stack_channels` — the intensity
  normalisation shared by training and inference.
- :func:`check_intensities` — a CT must hold Hounsfield units and a PET SUV or Bq/ml
  (catches swapped modalities when a case is read).
"""

from hecktorseg.preprocessing.batch import (
    GRID_MULTIPLE,
    check_trainable_size,
    missing_labels,
    output_paths,
    preprocess_dataset,
    select_part,
)
from hecktorseg.preprocessing.box import box_from_label, box_from_pet, find_brain
from hecktorseg.preprocessing.case import (
    PreprocessedCase,
    choose_box,
    count_label_voxels,
    preprocess_case,
    preprocess_images,
)
from hecktorseg.preprocessing.config import (
    GTVN_SIZE,
    MAX_GRID_VOXELS,
    PAPER_PREPROCESS,
    BoxSource,
    PreprocessConfig,
    default_preprocess_config,
)
from hecktorseg.preprocessing.grid import (
    pet_fov_mask,
    reference_geometry,
    resample_image,
    resample_label,
    to_original_grid,
)
from hecktorseg.preprocessing.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestEntry,
    SourceFile,
    merge_manifests,
    read_manifest,
    write_manifest,
)
from hecktorseg.preprocessing.normalize import PET_EPS, normalize_ct, normalize_pet, stack_channels
from hecktorseg.preprocessing.plausibility import check_intensities

__all__ = [
    "GRID_MULTIPLE",
    "GTVN_SIZE",
    "MANIFEST_NAME",
    "MAX_GRID_VOXELS",
    "PAPER_PREPROCESS",
    "PET_EPS",
    "BoxSource",
    "Manifest",
    "ManifestEntry",
    "PreprocessConfig",
    "PreprocessedCase",
    "SourceFile",
    "box_from_label",
    "box_from_pet",
    "check_intensities",
    "check_trainable_size",
    "choose_box",
    "count_label_voxels",
    "default_preprocess_config",
    "find_brain",
    "merge_manifests",
    "missing_labels",
    "normalize_ct",
    "normalize_pet",
    "output_paths",
    "pet_fov_mask",
    "preprocess_case",
    "preprocess_dataset",
    "preprocess_images",
    "read_manifest",
    "reference_geometry",
    "resample_image",
    "resample_label",
    "select_part",
    "stack_channels",
    "to_original_grid",
    "write_manifest",
]
