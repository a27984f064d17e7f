"""Cheap checks that a CT looks like a CT and a PET like a PET (catches swapped modalities).

A CT in Hounsfield units always holds air (about −1000 HU) around the patient and in
the airways, and nothing beyond a few thousand HU (metal reaches ~30 000 on extended
scales). A PET in SUV or Bq/ml is non-negative up to reconstruction noise and never
has a −1000 background. So:

* **CT**: at least :data:`CT_MIN_AIR_FRACTION` of the voxels are at or below
  :data:`AIR_HU` (−500 HU), and no voxel exceeds :data:`CT_MAX_HU`;
* **PET**: at most :data:`PET_MAX_AIR_FRACTION` of the voxels are at or below −500.

A PET given as the CT has no air; a CT given as the PET has a −1000 background: a
swap fails both checks. Each check is one pass over the voxels (no sorting).
Unusual data (a CT without air, a PET padded with −1000) can skip the checks:
``check_intensities=False`` in the API, ``--allow-implausible-intensities`` on the
command line.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.typing import PathLike

__all__ = [
    "AIR_HU",
    "CT_MAX_HU",
    "CT_MIN_AIR_FRACTION",
    "PET_MAX_AIR_FRACTION",
    "check_intensities",
]

AIR_HU = -500.0
"""Voxels at or below this value count as air (CT) or as a CT-like background (PET)."""
CT_MIN_AIR_FRACTION = 1e-3
"""A CT needs at least this fraction of air voxels (head-and-neck CTs hold far more)."""
CT_MAX_HU = 50_000.0
"""No CT voxel may exceed this (HU scales, even extended ones for metal, stay below)."""
PET_MAX_AIR_FRACTION = 1e-3
"""A PET may hold at most this fraction of voxels at or below :data:`AIR_HU`."""

_HINT_SWAP = (
    "are CT and PET swapped (file names, or the channel order of dataset.json)? "
    "pass check_intensities=False if this data is unusual but right"
)


def _array(image: sitk.Image | npt.ArrayLike) -> npt.NDArray[np.floating]:
    if isinstance(image, sitk.Image):
        return np.asarray(sitk.GetArrayViewFromImage(image), dtype=np.float32)
    return np.asarray(image, dtype=np.float32)


def check_intensities(
    image: sitk.Image | npt.ArrayLike,
    modality: Literal["ct", "pet"],
    *,
    path: PathLike | None = None,
    patient_id: str = "",
) -> None:
    """Raise unless ``image`` holds intensities plausible for ``modality``.

    Parameters
    ----------
    image
        The image (SimpleITK or an array of voxel values).
    modality
        ``"ct"`` (Hounsfield units) or ``"pet"`` (SUV or Bq/ml).
    path
        The file, named in the error.
    patient_id
        Named in the error.

    Raises
    ------
    DataError
        A CT without air or with values beyond any HU scale; a PET with a −1000-like
        background.
    """
    values = _array(image)
    if values.size == 0:
        return
    who = f"patient {patient_id}: " if patient_id else ""
    air = float(np.count_nonzero(values <= AIR_HU)) / values.size
    if modality == "ct":
        low, high = float(values.min()), float(values.max())
        if air < CT_MIN_AIR_FRACTION:
            raise DataError(
                f"{who}the CT does not look like a CT in Hounsfield units: no air "
                f"(values {low:.4g} to {high:.4g}, {air:.2%} of voxels at or below {AIR_HU:g})",
                path=path,
                hint=_HINT_SWAP,
            )
        if high > CT_MAX_HU:
            raise DataError(
                f"{who}the CT does not look like a CT in Hounsfield units: values up to {high:.4g} "
                f"(above {CT_MAX_HU:g})",
                path=path,
                hint="check the file's units (rescale slope/intercept); " + _HINT_SWAP,
            )
    elif modality == "pet":
        if air > PET_MAX_AIR_FRACTION:
            raise DataError(
                f"{who}the PET does not look like a PET in SUV or Bq/ml: {air:.1%} of voxels are at or "
                f"below {AIR_HU:g} (minimum {float(values.min()):.4g}), like the air of a CT",
                path=path,
                hint=_HINT_SWAP,
            )
    else:  # pragma: no cover - guarded by the type
        raise ValueError(f"unknown modality {modality!r}")
