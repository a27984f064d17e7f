"""Stacking the slices of a classic (single-frame) CT or PET series into one 3-D image.

The checks, each a per-patient error (:class:`~hecktorseg.errors.GeometryError` /
:class:`~hecktorseg.errors.DataError`) unless a documented fix applies:

===========================  =====================================================================
Problem                      What happens
===========================  =====================================================================
enhanced multi-frame file    error (convert to single-frame images first, e.g. with ``emf2sf``)
mixed orientations           error naming the orientations found
gantry tilt / sheared stack  error with the tilt angle
duplicate instances          the same SOP instance, or the same position with the same pixels:
                             kept once, with a warning; same position, other pixels: error
missing slices               a gap of about 2 or more slice spacings: error naming where
uneven spacing               resampled (linear, along the slice normal) onto the median spacing,
                             with a warning
unreadable pixel data        error naming the file
===========================  =====================================================================

Pixel values are ``stored × RescaleSlope + RescaleIntercept`` of each slice (slopes may differ
from slice to slice, as in most PET series).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt
import pydicom
import SimpleITK as sitk

from hecktorseg.dicom.index import SeriesEntry, lenient_reading
from hecktorseg.dicom.rules import SOP_CLASS_ENHANCED
from hecktorseg.errors import DataError, GeometryError
from hecktorseg.io import Geometry, array_to_image

__all__ = ["SeriesVolume", "load_series", "sort_slices"]

logger = logging.getLogger(__name__)

ORIENTATION_TOL = 1e-4
TILT_TOL_MM = 0.01
SPACING_RTOL = 0.01


@attrs.frozen
class SeriesVolume:
    """A series stacked into a volume.

    Attributes
    ----------
    image
        The float32 image (rescaled values) on the series' grid.
    datasets
        The slices' datasets (with pixel data), in stacking order.
    warnings
        Fixes applied (duplicates dropped, resampling).
    resampled
        Whether the slices were resampled onto an even spacing (the image's slices then
        no longer match the DICOM instances one to one).
    """

    image: sitk.Image
    datasets: tuple[pydicom.Dataset, ...]
    warnings: tuple[str, ...] = ()
    resampled: bool = False


def _floats(ds: pydicom.Dataset, keyword: str, n: int, what: str) -> npt.NDArray[np.float64]:
    value = ds.get(keyword)
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        out = np.zeros(0)
    if out.shape != (n,) or not np.all(np.isfinite(out)):
        raise DataError(
            f"{what}: {keyword} missing or invalid ({value!r})", path=getattr(ds, "filename", None)
        )
    return out


def _normal(orientation: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    normal = np.cross(orientation[:3], orientation[3:])
    length = float(np.linalg.norm(normal))
    if length < 0.5:
        raise GeometryError(
            f"ImageOrientationPatient {orientation.tolist()} is not two orthogonal unit vectors"
        )
    return normal / length


def sort_slices(
    datasets: Sequence[pydicom.Dataset], what: str
) -> tuple[list[pydicom.Dataset], npt.NDArray[np.float64], list[str]]:
    """Sort slices along their normal; drop duplicates; check orientation and tilt.

    Returns
    -------
    tuple
        The slices in order, their positions along the normal (mm), and warnings.

    Raises
    ------
    GeometryError
        Mixed orientations, a tilted (sheared) stack, or two different slices at one position.
    """
    warnings: list[str] = []
    orientations = [_floats(ds, "ImageOrientationPatient", 6, what) for ds in datasets]
    first = orientations[0]
    mixed = [o for o in orientations if np.max(np.abs(o - first)) > ORIENTATION_TOL]
    if mixed:
        found = sorted({tuple(np.round(o, 3).tolist()) for o in orientations})
        raise GeometryError(
            f"{what}: slices with {len(found)} different orientations ({found[:3]})",
            hint="choose a series with one orientation (ct_series=/pet_series=)",
        )
    normal = _normal(first)
    positions = np.array([_floats(ds, "ImagePositionPatient", 3, what) for ds in datasets])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    kept: list[int] = []
    seen_uids: set[str] = set()
    for i in order:
        uid = str(datasets[i].get("SOPInstanceUID", ""))
        if uid and uid in seen_uids:
            warnings.append(f"{what}: instance {uid} appears twice; one copy used")
            continue
        seen_uids.add(uid)
        if kept and abs(along[i] - along[kept[-1]]) < TILT_TOL_MM:
            if np.array_equal(datasets[i].pixel_array, datasets[kept[-1]].pixel_array):
                warnings.append(f"{what}: two instances with the same pixels at {along[i]:.2f} mm; one used")
                continue
            raise GeometryError(
                f"{what}: two different slices at the same position ({along[i]:.2f} mm along the normal)",
                path=getattr(datasets[i], "filename", None),
                hint="the folder mixes two series with one SeriesInstanceUID; separate them",
            )
        kept.append(int(i))
    ordered = [datasets[i] for i in kept]
    pos = positions[kept]
    if len(ordered) > 1:
        steps = np.diff(pos, axis=0)
        off_normal = steps - np.outer(steps @ normal, normal)
        worst = float(np.max(np.linalg.norm(off_normal, axis=1)))
        if worst > TILT_TOL_MM + 1e-3 * float(np.max(np.abs(steps @ normal))):
            k = int(np.argmax(np.linalg.norm(off_normal, axis=1)))
            angle = float(np.degrees(np.arctan2(np.linalg.norm(off_normal[k]), abs(steps[k] @ normal))))
            raise GeometryError(
                f"{what}: the slices are sheared (gantry tilt of about {angle:.1f}°): the stack is not "
                "perpendicular to the image plane",
                hint="resample the series to an untilted grid first (e.g. with a tilt-correcting converter)",
            )
    return ordered, pos @ normal, warnings


def _pixels(ds: pydicom.Dataset) -> npt.NDArray[np.float32]:
    try:
        raw = ds.pixel_array
    except Exception as exc:  # pydicom raises many kinds for broken pixel data
        raise DataError(
            f"unreadable pixel data ({type(exc).__name__}: {exc})",
            path=getattr(ds, "filename", None),
            hint="the file is truncated or uses an unsupported compression",
        ) from None
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    out: npt.NDArray[np.float32] = raw.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return out


def _resample_even(
    volume: npt.NDArray[np.float32], along: npt.NDArray[np.float64], spacing: float
) -> npt.NDArray[np.float32]:
    """Linear interpolation along axis 0 from positions ``along`` onto an even grid from ``along[0]``."""
    n = int(np.floor((along[-1] - along[0]) / spacing + 1e-6)) + 1
    targets = along[0] + spacing * np.arange(n)
    upper = np.clip(np.searchsorted(along, targets, side="right"), 1, len(along) - 1)
    lower = upper - 1
    w = ((targets - along[lower]) / (along[upper] - along[lower])).astype(np.float32)
    w = np.clip(w, 0.0, 1.0)[:, None, None]
    out: npt.NDArray[np.float32] = (volume[lower] * (1.0 - w) + volume[upper] * w).astype(np.float32)
    return out


def load_series(series: SeriesEntry, what: str | None = None) -> SeriesVolume:
    """Read a classic single-frame series into a float32 image (see the module's table of checks).

    Parameters
    ----------
    series
        The series (from :func:`~hecktorseg.dicom.index_dicom`).
    what
        How errors name the series (default ``"<modality> series <UID>"``).

    Raises
    ------
    DataError, GeometryError
        As listed in the module's table.
    """
    name = what or f"{series.modality} series {series.uid}"
    if series.first.frames > 1 or series.first.sop_class_uid in SOP_CLASS_ENHANCED:
        raise DataError(
            f"{name} is an enhanced multi-frame image ({series.first.frames} frames in one file), "
            "which is not supported",
            path=series.first.path,
            hint="convert it to classic single-frame images (e.g. dicom3tools' emf2sf) or give another series",
        )
    datasets: list[pydicom.Dataset] = []
    with lenient_reading():
        for entry in series.files:
            try:
                datasets.append(pydicom.dcmread(entry.path))
            except Exception as exc:
                raise DataError(
                    f"unreadable DICOM file ({type(exc).__name__}: {exc})", path=entry.path
                ) from None
    if len(datasets) < 2:
        raise DataError(
            f"{name} has {len(datasets)} slice(s); a volume needs at least 2", path=series.first.path
        )
    ordered, along, warnings = sort_slices(datasets, name)
    shapes = {(int(ds.Rows), int(ds.Columns)) for ds in ordered}
    if len(shapes) != 1:
        raise GeometryError(f"{name}: slices of different sizes {sorted(shapes)}")
    volume = np.stack([_pixels(ds) for ds in ordered])
    steps = np.diff(along)
    step = float(np.median(steps))
    if step <= 0:
        raise GeometryError(f"{name}: the slices do not advance along the normal")
    resampled = False
    gaps = steps / step
    if np.any(gaps > 1.5):
        k = int(np.argmax(gaps))
        raise GeometryError(
            f"{name}: about {round(gaps[k]) - 1} slice(s) missing between {along[k]:.1f} and {along[k + 1]:.1f} mm "
            f"along the normal (spacing {step:.2f} mm)",
            hint="re-export the complete series",
        )
    if np.max(np.abs(steps - step)) > SPACING_RTOL * step:
        warnings.append(
            f"{name}: uneven slice spacing ({steps.min():.2f}–{steps.max():.2f} mm); resampled linearly onto "
            f"{step:.2f} mm"
        )
        volume = _resample_even(volume, along, step)
        resampled = True
    first = ordered[0]
    orientation = _floats(first, "ImageOrientationPatient", 6, name)
    row_dir, col_dir, normal = orientation[:3], orientation[3:], _normal(orientation)
    pixel = _floats(first, "PixelSpacing", 2, name)  # (between rows, between columns)
    geometry = Geometry(
        size=(volume.shape[2], volume.shape[1], volume.shape[0]),
        spacing=(float(pixel[1]), float(pixel[0]), step),
        origin=tuple(_floats(first, "ImagePositionPatient", 3, name)),
        direction=tuple(np.column_stack([row_dir, col_dir, normal]).ravel()),
    )
    for warning in warnings:
        logger.warning("%s", warning)
    return SeriesVolume(array_to_image(volume, geometry), tuple(ordered), tuple(warnings), resampled)
