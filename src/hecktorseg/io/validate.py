"""Checking a discovered case: readable 3-D images, valid labels, overlapping grids (:func:`validate_case`)
and the label values each layout allows (:func:`allowed_labels`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

from hecktorseg.errors import GeometryError, LayoutError
from hecktorseg.io._reading import check_file_complete, read_image
from hecktorseg.io.case import Case, Layout
from hecktorseg.io.geometry import Geometry
from hecktorseg.io.layout_specs import (
    layout_spec,
)
from hecktorseg.io.nnunet import read_nnunet_dataset_json

__all__ = ["allowed_labels", "validate_case"]


def allowed_labels(layout: Layout | str | None) -> frozenset[int] | None:
    """The label values a layout allows (``None``: anything in 0..255, e.g. for nnU-Net)."""
    if layout is None:
        return None
    return layout_spec(layout).labels


def _overlap(a: Geometry, b: Geometry) -> bool:
    lo_a, hi_a = a.world_bounds()
    lo_b, hi_b = b.world_bounds()
    return bool(np.all(np.minimum(hi_a, hi_b) > np.maximum(lo_a, lo_b)))


def validate_case(case: Case, *, allowed_labels: Collection[int] | None = None) -> None:
    """Read a case's images and check them: readable, 3-D, finite, valid labels, overlapping grids.

    Parameters
    ----------
    case
        The case.
    allowed_labels
        Label values allowed in the label map; by default those of the case's
        layout (``{0, 1}`` for 2020/2021, ``{0, 1, 2}`` for 2022, the ``labels`` of
        ``dataset.json`` for nnU-Net).

    Raises
    ------
    DataError
        An image is missing, unreadable, truncated, not 3-D, holds NaN values,
        or the label map holds values outside ``allowed_labels`` (the message
        names the file).
    GeometryError
        The PET does not overlap the CT, the label map is not on the CT's grid
        (spacing, or origin off by more than one voxel), or the box lies outside the CT.
    """
    labels = allowed_labels if allowed_labels is not None else _default_labels(case)
    for path in (case.ct_path, case.pet_path, case.label_path):
        if path is not None:
            check_file_complete(path)
    ct = Geometry.from_image(read_image(case.ct_path, kind="ct"))
    pet = Geometry.from_image(read_image(case.pet_path, kind="pet"))
    if not _overlap(ct, pet):
        raise GeometryError(
            "the PET image does not overlap the CT image in world coordinates",
            path=case.pet_path,
            hint="check the origins of the CT and PET files (they must share one world frame)",
        )
    if case.label_path is not None:
        label = Geometry.from_image(read_image(case.label_path, kind="label", allowed_labels=labels))
        same_spacing = np.allclose(label.spacing, ct.spacing, rtol=1e-3, atol=1e-3)
        shift = np.abs(np.asarray(label.origin) - np.asarray(ct.origin)) / np.asarray(ct.spacing)
        if (
            not same_spacing
            or np.any(shift > 1.0 + 1e-3)
            or not np.allclose(label.direction, ct.direction, atol=1e-4)
        ):
            raise GeometryError(
                f"label grid (spacing {label.spacing}, origin {label.origin}) does not match "
                f"the CT grid (spacing {ct.spacing}, origin {ct.origin})",
                path=case.label_path,
                hint="the label map must be on the CT grid; resample it (nearest neighbour) onto the CT",
            )
    if case.bbox is not None:
        lo, hi = ct.world_bounds()
        if not np.all(np.minimum(hi, case.bbox.upper) > np.maximum(lo, case.bbox.lower)):
            raise GeometryError(
                f"patient {case.patient_id}: the box {case.bbox.to_dict()} lies outside the CT",
                path=case.ct_path,
                hint="check the box table (world millimetres, LPS like the images)",
            )


def _default_labels(case: Case) -> frozenset[int] | None:
    if case.layout is Layout.NNUNET and case.label_path is not None:
        try:
            labels = read_nnunet_dataset_json(case.label_path.parent.parent).get("labels")
        except LayoutError:
            return None
        if isinstance(labels, Mapping):
            values: set[int] = set()
            for value in labels.values():
                items = value if isinstance(value, (list, tuple)) else [value]
                values.update(int(v) for v in items if isinstance(v, (int, float)))
            return frozenset(values) or None
        return None
    return allowed_labels(case.layout)
