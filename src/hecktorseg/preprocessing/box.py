"""Finding the head-and-neck box: from a table, from the brain on PET, or around the label."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.io import BBox, Geometry
from hecktorseg.preprocessing.config import PreprocessConfig
from hecktorseg.typing import FloatArray

__all__ = ["box_from_label", "box_from_pet", "find_brain"]


_BRAIN_MIN_AREA_FRACTION = 0.25
"""Axial levels of the brain blob narrower than this fraction of its widest level are dropped."""


def find_brain(
    pet: sitk.Image, config: PreprocessConfig | None = None, *, patient_id: str = ""
) -> tuple[FloatArray, FloatArray]:
    """Locate the brain on PET as the largest high-uptake blob in the upper part of the scan.

    PET is smoothed with a Gaussian (``config.brain_smoothing_mm``), thresholded
    at ``config.brain_suv_threshold`` and split into connected components; the
    brain is the component with the most voxels whose world z lies in the upper
    ``config.brain_search_fraction`` of the PET's z extent.

    Parameters
    ----------
    pet
        PET image (SUV), any direction.
    config
        Detection settings.
    patient_id
        Names the case in errors.

    Returns
    -------
    tuple of numpy.ndarray
        World coordinates (mm) of the brain voxels' lower and upper bounds
        ``(lower_xyz, upper_xyz)`` (voxel centres).

    Raises
    ------
    GeometryError
        No voxel passes the threshold in the upper part of the scan.
    """
    from scipy import ndimage  # imported here: keeps ``hecktorseg --help`` fast

    cfg = config or PreprocessConfig()
    geometry = Geometry.from_image(pet)
    array = sitk.GetArrayViewFromImage(pet).astype(np.float32)
    sigma_zyx = [cfg.brain_smoothing_mm / s for s in reversed(geometry.spacing)]
    smooth = ndimage.gaussian_filter(array, sigma=sigma_zyx) if cfg.brain_smoothing_mm > 0 else array
    labels, n = ndimage.label(smooth > cfg.brain_suv_threshold)
    who = f"patient {patient_id}: " if patient_id else ""
    hint = "give the box in a table (bbox_table=), centre it on the label, or lower brain_suv_threshold="
    if n == 0:
        raise GeometryError(
            f"{who}no PET voxel above SUV {cfg.brain_suv_threshold} to locate the brain", hint=hint
        )
    zyx = np.argwhere(labels > 0)
    world = geometry.index_to_world(zyx[:, ::-1].astype(np.float64))
    lo, hi = geometry.world_bounds()
    z_cut = hi[2] - cfg.brain_search_fraction * (hi[2] - lo[2])
    upper = world[:, 2] >= z_cut
    ids = labels[tuple(zyx.T)]
    counts = np.bincount(ids[upper], minlength=n + 1)
    counts[0] = 0
    if counts.max() == 0:
        raise GeometryError(
            f"{who}no PET blob above SUV {cfg.brain_suv_threshold} in the upper "
            f"{cfg.brain_search_fraction:.0%} of the scan to locate the brain",
            hint=hint,
        )
    brain = world[ids == int(np.argmax(counts))]
    # After smoothing, a tumour (or the neck's uptake) just below the brain can join the
    # brain's blob. The brain is far wider than anything hanging from it, so keep only the
    # axial levels where the blob is at least a quarter of its widest cross-section.
    bin_mm = max(geometry.spacing)
    levels = np.floor(brain[:, 2] / bin_mm).astype(np.int64)
    levels -= levels.min()
    area = np.bincount(levels)
    wide = area >= _BRAIN_MIN_AREA_FRACTION * area.max()
    brain = brain[wide[levels]]
    return brain.min(axis=0), brain.max(axis=0)


def box_from_pet(pet: sitk.Image, config: PreprocessConfig | None = None, *, patient_id: str = "") -> BBox:
    """Place the head-and-neck box relative to the brain found on PET.

    Following the HECKTOR organisers: the box (``config.auto_box_size``,
    144 mm by default) is centred laterally (x) on the brain, shifted by
    ``box_offset_mm[1]`` in y (−30 mm: anterior in LPS), and its top lies
    ``box_offset_mm[2]`` (30 mm) above the brain's lowest point, so it extends
    downwards over the head-and-neck region below the brain.

    Parameters
    ----------
    pet
        PET image (SUV).
    config
        Box size and placement settings.
    patient_id
        Names the case in errors.

    Returns
    -------
    BBox
        The box in world mm.
    """
    cfg = config or PreprocessConfig()
    lower, upper = find_brain(pet, cfg, patient_id=patient_id)
    size = np.asarray(cfg.auto_box_size, dtype=np.float64)
    off = np.asarray(cfg.box_offset_mm, dtype=np.float64)
    cx = (lower[0] + upper[0]) / 2.0 + off[0]
    cy = (lower[1] + upper[1]) / 2.0 + off[1]
    top = lower[2] + off[2]
    return BBox(cx - size[0] / 2, cx + size[0] / 2, cy - size[1] / 2, cy + size[1] / 2, top - size[2], top)


def box_from_label(
    label: sitk.Image, config: PreprocessConfig | None = None, *, patient_id: str = ""
) -> BBox:
    """A box of ``config.auto_box_size`` centred on the centroid of the label's foreground (training only).

    Raises
    ------
    DataError
        The label map is empty.
    """
    cfg = config or PreprocessConfig()
    geometry = Geometry.from_image(label)
    zyx = np.argwhere(sitk.GetArrayViewFromImage(label) > 0)
    if zyx.size == 0:
        who = f"patient {patient_id}: " if patient_id else ""
        raise DataError(
            f"{who}the label map is empty; cannot centre the box on it",
            hint="use box_source 'pet' or 'table' for this case",
        )
    centre = geometry.index_to_world(zyx[:, ::-1].astype(np.float64)).mean(axis=0)
    return BBox.from_center(centre, cfg.auto_box_size)
