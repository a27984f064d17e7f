"""The reference grid: world-coordinate resampling onto it, its PET field of view, and back."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.io import BBox, Geometry, array_to_image
from hecktorseg.preprocessing.config import PreprocessConfig

__all__ = [
    "box_overlap_fraction",
    "pet_fov_mask",
    "reference_geometry",
    "resample_image",
    "resample_label",
    "to_original_grid",
]

_INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "nearest": sitk.sitkNearestNeighbor,
}


def reference_geometry(bbox: BBox, config: PreprocessConfig | None = None) -> Geometry:
    """The reference grid of a box: origin at the box corner ``(x1, y1, z1)``, identity direction.

    Parameters
    ----------
    bbox
        Head-and-neck box in world mm.
    config
        Gives the grid's ``spacing`` and ``size`` (defaults: 1 mm, 144³).

    Returns
    -------
    Geometry
        Voxel ``(0, 0, 0)`` is centred on the box corner; the grid extends
        ``spacing × size`` mm along +x, +y, +z.
    """
    cfg = config or PreprocessConfig()
    return Geometry(size=cfg.size, spacing=cfg.spacing, origin=(bbox.x1, bbox.y1, bbox.z1))


def _reference_image(reference: Geometry | sitk.Image) -> sitk.Image:
    if isinstance(reference, Geometry):
        return reference.empty_image(sitk.sitkUInt8)
    return reference


def resample_image(
    image: sitk.Image,
    reference: Geometry | sitk.Image,
    *,
    interpolation: Literal["linear", "bspline", "nearest"] = "linear",
    fill: float = 0.0,
    clamp: bool = True,
) -> sitk.Image:
    """Resample an intensity image onto a grid in world coordinates (identity transform).

    Parameters
    ----------
    image
        Input image with any spacing, origin and direction.
    reference
        Target grid (a :class:`~hecktorseg.io.Geometry` or an image whose grid is used).
    interpolation
        ``"linear"``, ``"bspline"`` (cubic) or ``"nearest"``.
    fill
        Value of output voxels whose centre lies outside the input's extent.
    clamp
        With ``"bspline"``: clip the result to the input's value range (cubic
        splines overshoot at edges), keeping ``fill`` where it lies outside.

    Returns
    -------
    SimpleITK.Image
        float32 image on the reference grid.
    """
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(_reference_image(reference))
    resampler.SetTransform(sitk.Transform())
    resampler.SetInterpolator(_INTERPOLATORS[interpolation])
    resampler.SetDefaultPixelValue(float(fill))
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    out = resampler.Execute(sitk.Cast(image, sitk.sitkFloat32) if interpolation == "bspline" else image)
    if interpolation == "bspline" and clamp:
        stats = sitk.MinimumMaximumImageFilter()
        stats.Execute(image)
        lo, hi = min(stats.GetMinimum(), fill), max(stats.GetMaximum(), fill)
        out = sitk.Clamp(out, sitk.sitkFloat32, lo, hi)
    return out


def resample_label(
    label: sitk.Image,
    reference: Geometry | sitk.Image,
    *,
    interpolation: Literal["nearest", "linear"] = "nearest",
) -> sitk.Image:
    """Resample a label map onto a grid, keeping its label values (outside: 0).

    Parameters
    ----------
    label
        Integer label map (0 background).
    reference
        Target grid.
    interpolation
        ``"nearest"``, or ``"linear"``: each label's indicator is resampled
        linearly and thresholded at 0.5 (indicators sum to at most 1, so at
        most one label passes), which is smoother on coarse slices.

    Returns
    -------
    SimpleITK.Image
        uint8 label map on the reference grid.
    """
    ref = _reference_image(reference)
    label = sitk.Cast(label, sitk.sitkUInt8)
    if interpolation == "nearest":
        resampler = sitk.ResampleImageFilter()
        resampler.SetReferenceImage(ref)
        resampler.SetTransform(sitk.Transform())
        resampler.SetInterpolator(sitk.sitkNearestNeighbor)
        resampler.SetDefaultPixelValue(0)
        resampler.SetOutputPixelType(sitk.sitkUInt8)
        return resampler.Execute(label)
    values = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(label)) if v != 0]
    out = np.zeros(tuple(reversed(ref.GetSize())), dtype=np.uint8)
    for value in values:
        indicator = sitk.Cast(label == value, sitk.sitkFloat32)
        moved = resample_image(indicator, ref, interpolation="linear", fill=0.0)
        out[sitk.GetArrayViewFromImage(moved) > 0.5] = value
    result = sitk.GetImageFromArray(out)
    result.CopyInformation(ref)
    return result


def pet_fov_mask(pet_geometry: Geometry, reference: Geometry) -> npt.NDArray[np.bool_]:
    """Which reference voxels lie inside the PET field of view.

    A voxel is inside when its centre maps to a continuous PET index within
    ``[-0.5, size - 0.5]`` on every axis — the region where resampling sees
    PET data rather than the fill value.

    Parameters
    ----------
    pet_geometry
        Grid of the original PET.
    reference
        The reference grid (any direction).

    Returns
    -------
    numpy.ndarray
        Boolean array of shape ``reference.shape_zyx``.
    """
    # Continuous PET index of reference voxel (i, j, k) is affine in (i, j, k): c + i*a + j*b + k*d.
    base = pet_geometry.world_to_index(reference.index_to_world(np.zeros(3)))
    axes = np.eye(3)
    steps = [pet_geometry.world_to_index(reference.index_to_world(e)) - base for e in axes]
    nx, ny, nz = reference.size
    ii = np.arange(nx, dtype=np.float64)[None, None, :]
    jj = np.arange(ny, dtype=np.float64)[None, :, None]
    kk = np.arange(nz, dtype=np.float64)[:, None, None]
    mask = np.ones(reference.shape_zyx, dtype=bool)
    tol = 1e-6
    for axis in range(3):
        idx = base[axis] + ii * steps[0][axis] + jj * steps[1][axis] + kk * steps[2][axis]
        mask &= (idx >= -0.5 - tol) & (idx <= pet_geometry.size[axis] - 0.5 + tol)
    return mask


def box_overlap_fraction(bbox: BBox, geometry: Geometry) -> float:
    """Fraction of the box's volume inside the axis-aligned world extent of ``geometry``."""
    lo, hi = geometry.world_bounds()
    inter = np.clip(np.minimum(hi, bbox.upper) - np.maximum(lo, bbox.lower), 0.0, None)
    return float(np.prod(inter) / np.prod(bbox.size))


def to_original_grid(
    image_on_reference: sitk.Image | npt.NDArray[np.generic],
    reference: Geometry,
    target: Geometry | sitk.Image,
    *,
    kind: Literal["probability", "label"],
) -> sitk.Image:
    """Map an image from the reference grid back onto the original CT grid.

    Parameters
    ----------
    image_on_reference
        Probabilities or a label map on the reference grid: a SimpleITK image
        (its grid must match ``reference``) or a (z, y, x) array.
    reference
        The reference grid (``ManifestEntry.reference`` / ``PreprocessedCase.reference``).
    target
        The original CT grid, or the CT image itself.
    kind
        ``"probability"``: linear interpolation, 0 outside the box, float32 —
        threshold *after* this call. ``"label"``: nearest neighbour, 0 outside,
        uint8.

    Returns
    -------
    SimpleITK.Image
        An image with exactly the target's size, spacing, origin and direction.

    Raises
    ------
    GeometryError
        The image's grid is not the reference grid.
    """
    target_geometry = Geometry.from_image(target) if isinstance(target, sitk.Image) else target
    if isinstance(image_on_reference, np.ndarray):
        array = image_on_reference
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.shape != reference.shape_zyx:
            raise GeometryError(
                f"array of shape {array.shape} is not on the reference grid {reference.shape_zyx} (z, y, x)",
                hint="pass the network output for one channel, shaped like the preprocessed images",
            )
        dtype = np.float32 if kind == "probability" else np.uint8
        image = array_to_image(np.ascontiguousarray(array, dtype=dtype), reference)
    else:
        image = image_on_reference
        if not Geometry.from_image(image).is_close(reference):
            raise GeometryError(
                f"image grid {Geometry.from_image(image)} is not the reference grid {reference}",
                hint="pass the reference geometry recorded for this case in the manifest",
            )
    ref_image = target_geometry.empty_image(sitk.sitkUInt8)
    if kind == "probability":
        return resample_image(sitk.Cast(image, sitk.sitkFloat32), ref_image, interpolation="linear", fill=0.0)
    if kind == "label":
        return resample_label(image, ref_image, interpolation="nearest")
    raise DataError(f"kind must be 'probability' or 'label', got {kind!r}")
