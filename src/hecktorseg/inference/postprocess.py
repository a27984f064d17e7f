"""Post-processing of predicted label maps: connected components of GTVp and GTVn.

Both functions work on a uint8 label map in ``(z, y, x)`` order (as
``sitk.GetArrayFromImage`` gives it) and use 26-connectivity, the connectivity
the HECKTOR 2025 rules use to count lesions.

* :func:`keep_largest_component` keeps, for the chosen labels, only their largest
  component. ``hecktorseg predict --largest-component`` applies it to label 1
  (GTVt / GTVp) only: a patient has one primary tumour, but may have several
  lymph nodes.
* :func:`remove_small_components` drops the components of one label (by default 2,
  GTVn) whose volume is below a threshold in mm³ (voxel count × the product of the
  voxel spacing, so anisotropic CT voxels are counted correctly);
  ``hecktorseg predict --min-gtvn-volume MM3``.

:func:`postprocess_mask` applies both in that order, as the
:class:`~hecktorseg.inference.Predictor` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from hecktorseg.errors import ConfigError

__all__ = [
    "GTVN_LABEL",
    "GTVP_LABEL",
    "MIN_GTVN_VOLUME_MM3",
    "keep_largest_component",
    "postprocess_mask",
    "remove_small_components",
]

GTVP_LABEL = 1
"""Label value of the primary tumour (GTVt in 2020/2021, GTVp from 2022 on)."""

GTVN_LABEL = 2
"""Label value of the lymph nodes (GTVn, HECKTOR 2022 and 2025/2026)."""

MIN_GTVN_VOLUME_MM3 = 200.0
"""Default of ``min_gtvn_volume`` (``predict --min-gtvn-volume``): predicted GTVn components under
200 mm³ are removed. Chosen on validation phantoms of their own seed: 0 / 50–100 / 200–500 mm³
gave a GTVn F1 of 0.667 / 0.706 / 0.750 (2 / 1 / 0 false positives, no true node lost); 200 is
the smallest threshold with the best F1, well under the phantoms' smallest node (0.47 ml).
Real nodes can be smaller: check on your validation data (0 keeps every component)."""


def _structure(ndim: int) -> npt.NDArray[np.bool_]:
    return np.ones((3,) * ndim, dtype=bool)


def keep_largest_component(
    mask: npt.NDArray[np.integer[Any]], labels: Iterable[int] | None = None
) -> npt.NDArray[np.uint8]:
    """Keep only the largest 26-connected component of each of ``labels``.

    Parameters
    ----------
    mask
        Label map (any integer dtype).
    labels
        Label values to reduce to their largest component (``None``: every
        non-zero value present). Other labels are kept unchanged; voxels of a
        removed component become 0. Ties are broken by the lowest component index
        (``scipy.ndimage.label`` order).

    Returns
    -------
    numpy.ndarray
        uint8 label map of the same shape.
    """
    values = [int(v) for v in np.unique(mask) if v != 0] if labels is None else [int(v) for v in labels]
    out = np.asarray(mask).astype(np.uint8, copy=True)
    structure = _structure(out.ndim)
    for value in values:
        components, n = ndimage.label(out == value, structure=structure)
        if n <= 1:
            continue
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        keep = int(np.argmax(sizes))
        out[(components != 0) & (components != keep)] = 0
    return out


def remove_small_components(
    mask: npt.NDArray[np.integer[Any]],
    spacing: Sequence[float],
    min_volume_mm3: float,
    *,
    label: int = GTVN_LABEL,
) -> npt.NDArray[np.uint8]:
    """Set to 0 the 26-connected components of ``label`` smaller than ``min_volume_mm3``.

    Parameters
    ----------
    mask
        Label map in ``(z, y, x)`` order.
    spacing
        Voxel size in mm in SimpleITK's ``(x, y, z)`` order (``image.GetSpacing()``).
        Only the product matters, so the order does not change the result.
    min_volume_mm3
        Components whose volume (voxels × voxel volume) is *strictly below* this are
        removed; 0 removes nothing.
    label
        The label whose components are filtered (default 2, GTVn).

    Returns
    -------
    numpy.ndarray
        uint8 label map of the same shape.

    Raises
    ------
    ConfigError
        A negative volume or a spacing that is not ``mask.ndim`` positive numbers.
    """
    if min_volume_mm3 < 0:
        raise ConfigError(f"the minimum GTVn volume must be >= 0 mm³, got {min_volume_mm3}")
    sp = [float(s) for s in spacing]
    if len(sp) != np.ndim(mask) or min(sp) <= 0:
        raise ConfigError(f"spacing must be {np.ndim(mask)} positive numbers, got {tuple(spacing)}")
    out = np.asarray(mask).astype(np.uint8, copy=True)
    if min_volume_mm3 == 0:
        return out
    voxel_mm3 = float(np.prod(sp))
    components, n = ndimage.label(out == label, structure=_structure(out.ndim))
    if n == 0:
        return out
    volumes = np.bincount(components.ravel()) * voxel_mm3
    small = volumes < min_volume_mm3
    small[0] = False
    out[small[components]] = 0
    return out


def postprocess_mask(
    mask: npt.NDArray[np.integer[Any]],
    spacing: Sequence[float],
    *,
    largest_component: bool = False,
    min_gtvn_volume_mm3: float = 0.0,
) -> npt.NDArray[np.uint8]:
    """The post-processing of :class:`~hecktorseg.inference.Predictor`.

    First, with ``largest_component``, only the largest component of label 1 (GTVp)
    is kept; then the GTVn (label 2) components smaller than ``min_gtvn_volume_mm3``
    are removed. Label 2 is never reduced to one component.

    Parameters
    ----------
    mask
        Label map in ``(z, y, x)`` order.
    spacing
        Voxel size (mm) of the grid of ``mask``, ``(x, y, z)``.
    largest_component
        Keep the largest GTVp component only.
    min_gtvn_volume_mm3
        Remove GTVn components below this volume (0: keep all).
    """
    out = np.asarray(mask).astype(np.uint8, copy=True)
    if largest_component:
        out = keep_largest_component(out, labels=(GTVP_LABEL,))
    if min_gtvn_volume_mm3 > 0:
        out = remove_small_components(out, spacing, min_gtvn_volume_mm3, label=GTVN_LABEL)
    elif min_gtvn_volume_mm3 < 0:
        raise ConfigError(f"the minimum GTVn volume must be >= 0 mm³, got {min_gtvn_volume_mm3}")
    return out
