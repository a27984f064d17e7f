"""Intensity normalisation shared by training and inference."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hecktorseg.errors import DataError
from hecktorseg.preprocessing.config import PreprocessConfig

__all__ = ["PET_EPS", "normalize_ct", "normalize_pet", "stack_channels"]

PET_EPS = 1e-3
"""Added to the PET standard deviation in the z-score, as in the original."""


def normalize_ct(
    ct_zyx: npt.ArrayLike, clip: tuple[float, float] = (-1024.0, 1024.0)
) -> npt.NDArray[np.float32]:
    """Clip CT (HU) to ``clip`` and divide by the clip's largest magnitude (1024 by default).

    Parameters
    ----------
    ct_zyx
        CT values in HU, any shape.
    clip
        HU range kept.

    Returns
    -------
    numpy.ndarray
        float32 array in about [-1, 1].
    """
    lo, hi = float(clip[0]), float(clip[1])
    scale = max(abs(lo), abs(hi))
    out = np.clip(np.asarray(ct_zyx, dtype=np.float32), lo, hi)
    out /= np.float32(scale)
    return out


def normalize_pet(pet_zyx: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> npt.NDArray[np.float32]:
    """Z-score PET: ``(x - mean) / (std + 1e-3)``.

    Parameters
    ----------
    pet_zyx
        PET values (SUV), any shape.
    mask
        Boolean array of the same shape; mean and standard deviation are
        computed over its true voxels (e.g. the PET field of view). ``None``:
        over all voxels (the original behaviour). All voxels are normalised.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.

    Raises
    ------
    DataError
        The mask has the wrong shape or selects no voxel.
    """
    pet = np.asarray(pet_zyx, dtype=np.float32)
    if mask is None:
        values = pet
    else:
        m = np.asarray(mask, dtype=bool)
        if m.shape != pet.shape:
            raise DataError(f"PET mask shape {m.shape} differs from the PET shape {pet.shape}")
        if not m.any():
            raise DataError(
                "the PET field-of-view mask selects no voxel",
                hint="the box lies outside the PET; check the box or use pet_stats='all'",
            )
        values = pet[m]
    mean = float(values.mean(dtype=np.float64))
    std = float(values.std(dtype=np.float64))
    out: npt.NDArray[np.float32] = (pet - np.float32(mean)) / np.float32(std + PET_EPS)
    return out.astype(np.float32, copy=False)


def stack_channels(
    ct_zyx: npt.ArrayLike,
    pet_zyx: npt.ArrayLike,
    config: PreprocessConfig | None = None,
    pet_fov: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float32]:
    """Build the network input ``(2, z, y, x)``: normalised [CT, PET].

    The one function training and inference use, so both normalise alike.

    Parameters
    ----------
    ct_zyx, pet_zyx
        CT (HU) and PET (SUV) on the reference grid, same shape.
    config
        Gives ``ct_clip`` and ``pet_stats``.
    pet_fov
        PET field-of-view mask on the reference grid
        (:func:`~hecktorseg.preprocessing.pet_fov_mask`,
        ``ManifestEntry.pet_fov_mask()``, ``PreprocessedCase.pet_fov``). Used
        when ``config.pet_stats == "fov"``; if it is ``None`` the statistics
        fall back to all voxels.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(2, z, y, x)``.
    """
    cfg = config or PreprocessConfig()
    ct = np.asarray(ct_zyx)
    pet = np.asarray(pet_zyx)
    if ct.shape != pet.shape:
        raise DataError(f"CT shape {ct.shape} differs from PET shape {pet.shape}")
    mask = pet_fov if cfg.pet_stats == "fov" else None
    out = np.empty((2, *ct.shape), dtype=np.float32)
    out[0] = normalize_ct(ct, cfg.ct_clip)
    out[1] = normalize_pet(pet, mask)
    return out
