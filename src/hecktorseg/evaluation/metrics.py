"""Overlap and surface-distance metrics on binary masks, spacing-aware.

Every function here works on NumPy arrays and an explicit voxel spacing.

**Axis order.** The spacing must be given *in the same axis order as the
array*. Arrays read through SimpleITK (:func:`hecktorseg.io.image_to_array`)
are (z, y, x), while ``image.GetSpacing()`` and
:attr:`hecktorseg.io.Geometry.spacing` are (x, y, z): pass
``spacing[::-1]`` (or use :func:`spacing_zyx`). Passing the (x, y, z)
spacing to a (z, y, x) array is exactly the bug of the official HECKTOR 2021
HD95 script; :func:`hecktorseg.evaluation.score_2021` reproduces it on request.

**Masks.** Any array is turned into a boolean mask with ``mask != 0``; both
masks must have the same shape.

**Surfaces.** The surface of a mask is the set of its voxels with at least one
face neighbour (6-connectivity) outside the mask; voxels on the array border
count as surface (the outside of the array is background). Distances are
measured between voxel centres in millimetres with
:func:`scipy.ndimage.distance_transform_edt` (``sampling=spacing``), as MedPy
and the HECKTOR evaluation scripts do.

**Empty masks.**

============================  ==========================  ============================
metric                        both masks empty            exactly one mask empty
============================  ==========================  ============================
dice, precision, recall       1.0                         0.0 (where undefined)
hd95, assd                    0.0                         ``inf``
surface_dice                  1.0                         0.0
============================  ==========================  ============================

``precision`` is 0.0 for an empty prediction with a non-empty ground truth and
``recall`` is 0.0 for an empty ground truth with a non-empty prediction. The
official scores of each edition (which have their own conventions) are in
:mod:`hecktorseg.evaluation.scoring`.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from hecktorseg.errors import GeometryError

__all__ = [
    "SurfaceDistances",
    "assd",
    "dice",
    "hd95",
    "precision",
    "recall",
    "spacing_zyx",
    "surface_dice",
    "surface_distances",
    "volume",
]

BoolArray = npt.NDArray[np.bool_]


def spacing_zyx(spacing_xyz: Sequence[float]) -> tuple[float, float, float]:
    """Turn a SimpleITK (x, y, z) spacing into the (z, y, x) order of its NumPy array."""
    x, y, z = (float(v) for v in spacing_xyz)
    return (z, y, x)


def _pair(pred: npt.ArrayLike, gt: npt.ArrayLike) -> tuple[BoolArray, BoolArray]:
    p = np.asarray(pred) != 0
    g = np.asarray(gt) != 0
    if p.shape != g.shape:
        raise GeometryError(
            f"prediction shape {p.shape} differs from ground-truth shape {g.shape}",
            hint="resample both masks onto one grid first",
        )
    return p, g


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim:
        raise GeometryError(f"spacing {values} has {len(values)} values for a {ndim}-D array")
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise GeometryError(f"spacing must be positive and finite, got {values}")
    return values


def dice(pred: npt.ArrayLike, gt: npt.ArrayLike) -> float:
    """Dice similarity coefficient ``2|P∩G| / (|P| + |G|)``.

    Parameters
    ----------
    pred, gt
        Masks of the same shape (non-zero = foreground).

    Returns
    -------
    float
        In [0, 1]; 1.0 when both masks are empty.
    """
    p, g = _pair(pred, gt)
    denom = int(p.sum()) + int(g.sum())
    if denom == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, g).sum()) / denom


def precision(pred: npt.ArrayLike, gt: npt.ArrayLike) -> float:
    """Positive predictive value ``|P∩G| / |P|`` (1.0 if both are empty, 0.0 if only ``pred`` is)."""
    p, g = _pair(pred, gt)
    n_pred = int(p.sum())
    if n_pred == 0:
        return 1.0 if not g.any() else 0.0
    return int(np.logical_and(p, g).sum()) / n_pred


def recall(pred: npt.ArrayLike, gt: npt.ArrayLike) -> float:
    """Sensitivity ``|P∩G| / |G|`` (1.0 if both are empty, 0.0 if only ``gt`` is)."""
    p, g = _pair(pred, gt)
    n_gt = int(g.sum())
    if n_gt == 0:
        return 1.0 if not p.any() else 0.0
    return int(np.logical_and(p, g).sum()) / n_gt


def volume(mask: npt.ArrayLike, spacing: Sequence[float] | None = None) -> float:
    """Volume of the foreground in mm³ (voxel count × voxel volume).

    Parameters
    ----------
    mask
        Mask (non-zero = foreground).
    spacing
        Voxel size per array axis in mm (the order does not matter here).
    """
    m = np.asarray(mask) != 0
    return float(m.sum()) * float(np.prod(_spacing(spacing, m.ndim)))


def _surface(mask: BoolArray) -> BoolArray:
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    eroded = ndimage.binary_erosion(mask, structure=structure, iterations=1, border_value=0)
    surface: BoolArray = np.logical_and(mask, np.logical_not(eroded))
    return surface


@attrs.frozen
class SurfaceDistances:
    """Distances (mm) from each surface voxel of one mask to the nearest surface voxel of the other.

    Attributes
    ----------
    pred_to_gt
        One distance per surface voxel of the prediction.
    gt_to_pred
        One distance per surface voxel of the ground truth.
    """

    pred_to_gt: npt.NDArray[np.float64]
    gt_to_pred: npt.NDArray[np.float64]

    @property
    def all(self) -> npt.NDArray[np.float64]:
        """Both directions concatenated (the symmetric set)."""
        return np.concatenate([self.pred_to_gt, self.gt_to_pred])


def _crop_to_union(p: BoolArray, g: BoolArray) -> tuple[BoolArray, BoolArray]:
    """Crop both masks to the bounding box of their union plus one voxel (distances are unchanged)."""
    union = np.logical_or(p, g)
    coords = np.nonzero(union)
    slices = tuple(
        slice(max(int(c.min()) - 1, 0), min(int(c.max()) + 2, n))
        for c, n in zip(coords, union.shape, strict=True)
    )
    return p[slices], g[slices]


def surface_distances(
    pred: npt.ArrayLike, gt: npt.ArrayLike, spacing: Sequence[float] | None = None
) -> SurfaceDistances:
    """Surface-to-surface distances in both directions (both masks must be non-empty).

    Parameters
    ----------
    pred, gt
        Masks of the same shape.
    spacing
        Voxel size in mm **in the array's axis order** ((z, y, x) for SimpleITK
        arrays); ``None`` means 1 mm.

    Raises
    ------
    ValueError
        If either mask is empty (the distances are undefined).
    """
    p, g = _pair(pred, gt)
    sampling = _spacing(spacing, p.ndim)
    if not p.any() or not g.any():
        raise ValueError("surface distances need two non-empty masks")
    p, g = _crop_to_union(p, g)
    sp, sg = _surface(p), _surface(g)
    dist_to_g = ndimage.distance_transform_edt(np.logical_not(sg), sampling=sampling)
    dist_to_p = ndimage.distance_transform_edt(np.logical_not(sp), sampling=sampling)
    return SurfaceDistances(
        pred_to_gt=np.asarray(dist_to_g[sp], dtype=np.float64),
        gt_to_pred=np.asarray(dist_to_p[sg], dtype=np.float64),
    )


def _empty_case(p: BoolArray, g: BoolArray, both: float, one: float) -> float | None:
    if not p.any() and not g.any():
        return both
    if not p.any() or not g.any():
        return one
    return None


def hd95(pred: npt.ArrayLike, gt: npt.ArrayLike, spacing: Sequence[float] | None = None) -> float:
    """95th percentile of the symmetric surface distances (mm), as MedPy's ``hd95``.

    The distances from the prediction's surface to the ground truth's and back
    are pooled and their 95th percentile (linear interpolation) is returned.

    Parameters
    ----------
    pred, gt
        Masks of the same shape.
    spacing
        Voxel size in mm in the array's axis order ((z, y, x) for SimpleITK arrays).

    Returns
    -------
    float
        0.0 if both masks are empty, ``inf`` if exactly one is.
    """
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 0.0, float("inf"))
    if special is not None:
        return special
    return float(np.percentile(surface_distances(p, g, spacing).all, 95))


def assd(pred: npt.ArrayLike, gt: npt.ArrayLike, spacing: Sequence[float] | None = None) -> float:
    """Average symmetric surface distance (mm): the mean of all distances in both directions.

    ``(Σ d(p, ∂G) + Σ d(g, ∂P)) / (|∂P| + |∂G|)``; 0.0 if both masks are
    empty, ``inf`` if exactly one is. Spacing in the array's axis order.
    """
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 0.0, float("inf"))
    if special is not None:
        return special
    return float(np.mean(surface_distances(p, g, spacing).all))


def surface_dice(
    pred: npt.ArrayLike,
    gt: npt.ArrayLike,
    spacing: Sequence[float] | None = None,
    *,
    tolerance_mm: float = 1.0,
) -> float:
    """Surface Dice (normalised surface distance) at a tolerance, counted over surface voxels.

    ``(|{p ∈ ∂P : d(p, ∂G) ≤ τ}| + |{g ∈ ∂G : d(g, ∂P) ≤ τ}|) / (|∂P| + |∂G|)``.

    Parameters
    ----------
    pred, gt
        Masks of the same shape.
    spacing
        Voxel size in mm in the array's axis order.
    tolerance_mm
        The tolerance τ in mm (non-negative).

    Returns
    -------
    float
        In [0, 1]; 1.0 if both masks are empty, 0.0 if exactly one is.
    """
    if not tolerance_mm >= 0:
        raise ValueError(f"tolerance_mm must be >= 0, got {tolerance_mm}")
    p, g = _pair(pred, gt)
    special = _empty_case(p, g, 1.0, 0.0)
    if special is not None:
        return special
    distances = surface_distances(p, g, spacing).all
    # a tiny slack so that a distance equal to the tolerance (e.g. one voxel) counts despite rounding
    return float(np.mean(distances <= tolerance_mm + 1e-9))
