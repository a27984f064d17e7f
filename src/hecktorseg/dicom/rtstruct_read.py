"""RTSTRUCT contours to a label map on the CT grid: point-in-polygon, even-odd rule.

Each closed planar contour is placed on the CT slice it lies on; a voxel belongs to an ROI when
its centre is inside an odd number of that ROI's contours on its slice (so inner contours are
holes). ROI names go to labels by :class:`~hecktorseg.dicom.rules.RoiRule` records; several ROIs
may make one label; a voxel in both GTVp and GTVn is GTVp (with a warning). This rasteriser is
written apart from the exporter (:mod:`hecktorseg.dicom.rtstruct_write`), which traces contours
with ``contourpy``; the round-trip tests compare the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import numpy.typing as npt
import pydicom

from hecktorseg.dicom.rules import DEFAULT_ROI_RULES, RoiRule
from hecktorseg.errors import DataError
from hecktorseg.io import Geometry

__all__ = ["RoiMapping", "fill_polygon", "rtstruct_to_labels"]

SLICE_TOL = 0.25
"""Largest distance of a contour from a CT slice centre, in slice spacings."""


@attrs.frozen
class RoiMapping:
    """Which ROI went to which label.

    Attributes
    ----------
    labels
        ROI name → label value, for the ROIs used.
    unmatched
        ROI names no rule matched (not used).
    warnings
        Overlaps, contours between slices, empty ROIs.
    """

    labels: dict[str, int]
    unmatched: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def fill_polygon(xs: npt.ArrayLike, ys: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """Pixels of a ``shape`` = (rows, columns) grid whose centre lies inside a closed polygon.

    ``xs`` are column and ``ys`` row coordinates of the vertices (pixel centres at integers).
    A ray from each pixel centre towards +x counts edge crossings; odd counts are inside.
    Edges are half-open in y, so a vertex on a row of centres is counted once.
    """
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    out = np.zeros(shape, dtype=bool)
    if x.size < 3:
        return out
    x0, y0, x1, y1 = x, y, np.roll(x, -1), np.roll(y, -1)
    rows = np.arange(max(0, int(np.ceil(y.min()))), min(shape[0] - 1, int(np.floor(y.max()))) + 1)
    cols = np.arange(shape[1], dtype=np.float64)
    for r in rows:
        crossing = (y0 > r) != (y1 > r)
        if not np.any(crossing):
            continue
        a0, b0, a1, b1 = x0[crossing], y0[crossing], x1[crossing], y1[crossing]
        hits = np.sort(a0 + (r - b0) * (a1 - a0) / (b1 - b0))
        right = hits.size - np.searchsorted(hits, cols, side="right")  # crossings to the right of each centre
        out[r] = (right % 2) == 1
    return out


def _label_of(name: str, rules: Sequence[RoiRule]) -> int | None:
    for rule in rules:
        if rule.matches(name):
            return rule.label
    return None


def rtstruct_to_labels(
    ds: pydicom.Dataset, geometry: Geometry, rules: Sequence[RoiRule] = DEFAULT_ROI_RULES
) -> tuple[npt.NDArray[np.uint8], RoiMapping]:
    """Rasterise an RTSTRUCT onto a CT grid: a uint8 ``(z, y, x)`` label map and the ROI mapping.

    Parameters
    ----------
    ds
        The RTSTRUCT dataset.
    geometry
        The CT grid it refers to.
    rules
        ROI name → label rules (first match wins).

    Raises
    ------
    DataError
        The RTSTRUCT lacks its ROI sequences, or a contour lies outside the CT's slices.
    """
    path = getattr(ds, "filename", None)
    names = {
        int(item.ROINumber): str(item.get("ROIName", "")) for item in ds.get("StructureSetROISequence", [])
    }
    if not names:
        raise DataError("RTSTRUCT has no StructureSetROISequence (no ROIs)", path=path)
    nx, ny, nz = geometry.size
    masks: dict[int, npt.NDArray[np.bool_]] = {}
    mapping: dict[str, int] = {}
    unmatched: list[str] = []
    warnings: list[str] = []
    inverse = np.linalg.inv(geometry.direction_matrix * np.asarray(geometry.spacing)[None, :])
    origin = np.asarray(geometry.origin)
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.get("ReferencedROINumber", -1))
        name = names.get(number, f"ROI {number}")
        label = _label_of(name, rules)
        if label is None:
            unmatched.append(name)
            continue
        mapping[name] = label
        roi_mask = np.zeros((nz, ny, nx), dtype=bool)
        for contour in roi.get("ContourSequence", []):
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper()
            if kind != "CLOSED_PLANAR":
                continue
            data = np.asarray([float(v) for v in contour.get("ContourData", [])], dtype=np.float64)
            if data.size < 9:
                continue
            index = (data.reshape(-1, 3) - origin) @ inverse.T
            z = float(np.mean(index[:, 2]))
            k = round(z)
            if abs(z - k) > SLICE_TOL or np.ptp(index[:, 2]) > 2 * SLICE_TOL:
                raise DataError(
                    f"RTSTRUCT ROI {name!r}: a contour does not lie on a CT slice (slice index {z:.2f})",
                    path=path,
                    hint="the RTSTRUCT was drawn on another grid; give the CT series it refers to",
                )
            if not 0 <= k < nz:
                raise DataError(
                    f"RTSTRUCT ROI {name!r}: a contour lies outside the CT (slice {k})", path=path
                )
            roi_mask[k] ^= fill_polygon(index[:, 0], index[:, 1], (ny, nx))
        if roi.get("ContourSequence") and not roi_mask.any():
            warnings.append(f"ROI {name!r} has no voxel inside its contours")
        masks[label] = masks[label] | roi_mask if label in masks else roi_mask
    out = np.zeros((nz, ny, nx), dtype=np.uint8)
    for label in sorted(masks, reverse=True):  # lower labels last: GTVp wins over GTVn
        out[masks[label]] = label
    if 1 in masks and 2 in masks:
        both = int(np.count_nonzero(masks[1] & masks[2]))
        if both:
            warnings.append(f"{both} voxel(s) in both GTVp and GTVn ROIs: counted as GTVp")
    return out, RoiMapping(mapping, tuple(unmatched), tuple(warnings))
