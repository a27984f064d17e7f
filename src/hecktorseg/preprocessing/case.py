"""Preprocessing one case in memory: checks, box, resampling onto the reference grid."""

from __future__ import annotations

import logging
from collections.abc import Collection

import attrs
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.io import (
    BBox,
    Case,
    Geometry,
    ImageKind,
    allowed_labels,
    read_images,
)
from hecktorseg.preprocessing.box import box_from_label, box_from_pet
from hecktorseg.preprocessing.config import PreprocessConfig
from hecktorseg.preprocessing.grid import (
    box_overlap_fraction,
    pet_fov_mask,
    reference_geometry,
    resample_image,
    resample_label,
)
from hecktorseg.preprocessing.normalize import stack_channels
from hecktorseg.typing import PathLike

__all__ = ["PreprocessedCase", "choose_box", "count_label_voxels", "preprocess_case", "preprocess_images"]

logger = logging.getLogger(__name__)


@attrs.define
class PreprocessedCase:
    """One case resampled onto its reference grid (in memory).

    Attributes
    ----------
    patient_id, centre
        Identity of the case.
    ct, pet
        float32 images on the reference grid (HU, SUV), not normalised.
    label
        uint8 label map on the reference grid (label values kept), or ``None``.
    reference
        The reference grid.
    ct_geometry, pet_geometry
        Grids of the original CT and PET (the CT grid is where predictions go back).
    bbox
        The box used.
    box_source
        Where the box came from: ``"table"``, ``"pet"``, ``"label"`` or ``"given"``.
    label_geometry
        Grid of the original label map, if any.
    label_voxels
        Voxels of each label value (> 0) in the original label map (empty without one).
    label_voxels_outside_box
        Of those, how many have their centre outside the box (world mm): they are lost
        to the reference grid.
    """

    patient_id: str
    centre: str
    ct: sitk.Image
    pet: sitk.Image
    label: sitk.Image | None
    reference: Geometry
    ct_geometry: Geometry
    pet_geometry: Geometry
    bbox: BBox
    box_source: str
    label_geometry: Geometry | None = None
    label_voxels: dict[int, int] = attrs.field(factory=dict)
    label_voxels_outside_box: dict[int, int] = attrs.field(factory=dict)

    @property
    def pet_fov(self) -> npt.NDArray[np.bool_]:
        """Reference voxels inside the PET field of view, (z, y, x)."""
        return pet_fov_mask(self.pet_geometry, self.reference)

    def network_input(self, config: PreprocessConfig | None = None) -> npt.NDArray[np.float32]:
        """Normalised ``(2, z, y, x)`` [CT, PET] input (see :func:`stack_channels`)."""
        return stack_channels(
            sitk.GetArrayViewFromImage(self.ct),
            sitk.GetArrayViewFromImage(self.pet),
            config,
            pet_fov=self.pet_fov,
        )


def _who(patient_id: str) -> str:
    return f"patient {patient_id}: " if patient_id else ""


def _overlap(a: Geometry, b: Geometry) -> float:
    lo_a, hi_a = a.world_bounds()
    lo_b, hi_b = b.world_bounds()
    inter = np.clip(np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b), 0.0, None)
    return float(np.prod(inter))


def _label_grid_matches(label: Geometry, ct: Geometry, tol_voxels: float) -> bool:
    """Same spacing and direction; origin within ``tol_voxels`` CT voxels; size within ceil(tol) voxels."""
    spacing = np.asarray(ct.spacing)
    return (
        bool(np.allclose(label.spacing, ct.spacing, rtol=1e-3, atol=1e-4))
        and bool(np.allclose(label.direction, ct.direction, rtol=0, atol=1e-3))
        and bool(np.all(np.abs(np.asarray(label.origin) - ct.origin) <= tol_voxels * spacing + 1e-4))
        and bool(np.all(np.abs(np.asarray(label.size) - ct.size) <= np.ceil(tol_voxels)))
    )


def count_label_voxels(label: sitk.Image, box: BBox) -> tuple[dict[int, int], dict[int, int]]:
    """Voxels of each label value (> 0), and how many of them lie outside ``box``.

    A voxel lies outside when its centre (world mm) is outside the box's closed extent.

    Returns
    -------
    tuple of dict
        ``(total, outside)``, both keyed by label value (every value present in ``total``).
    """
    array = sitk.GetArrayViewFromImage(label)
    zyx = np.argwhere(array > 0)
    values = array[tuple(zyx.T)].astype(np.int64)
    world = Geometry.from_image(label).index_to_world(zyx[:, ::-1].astype(np.float64))
    lower, upper = np.asarray(box.lower, dtype=np.float64), np.asarray(box.upper, dtype=np.float64)
    outside = np.any((world < lower) | (world > upper), axis=1)
    total = {int(v): int(n) for v, n in zip(*np.unique(values, return_counts=True), strict=True)}
    lost = {v: int(np.count_nonzero(outside[values == v])) for v in total}
    return total, lost


def choose_box(
    config: PreprocessConfig,
    *,
    pet: sitk.Image,
    label: sitk.Image | None = None,
    table_bbox: BBox | None = None,
    patient_id: str = "",
) -> tuple[BBox, str]:
    """Pick the head-and-neck box as ``config.box_source`` says.

    Returns
    -------
    tuple
        ``(bbox, source)`` with source ``"table"``, ``"pet"`` or ``"label"``.

    Raises
    ------
    GeometryError
        ``box_source="table"`` but the case has no box in a table, or the brain is not found.
    DataError
        ``box_source="label"`` but the case has no (or an empty) label map.
    """
    source = config.box_source
    if source == "auto":
        source = "table" if table_bbox is not None else "pet"
    if source == "table":
        if table_bbox is None:
            raise GeometryError(
                f"{_who(patient_id)}no box in the box table",
                hint="give a table with --bbox (columns PatientID,x1,x2,y1,y2,z1,z2) or use --box-source auto/pet",
            )
        return table_bbox, "table"
    if source == "pet":
        return box_from_pet(pet, config, patient_id=patient_id), "pet"
    if label is None:
        raise DataError(
            f"{_who(patient_id)}box_source 'label' needs a label map, and this case has none",
            hint="use box_source 'pet' or 'table' for unlabelled cases",
        )
    return box_from_label(label, config, patient_id=patient_id), "label"


def _legacy_crop(image: sitk.Image, bbox: BBox) -> sitk.Image:
    """Crop to the box with its corners rounded to this image's own voxels (the original code)."""
    lo = np.asarray(image.TransformPhysicalPointToIndex(tuple(float(v) for v in bbox.lower)))
    hi = np.asarray(image.TransformPhysicalPointToIndex(tuple(float(v) for v in bbox.upper)))
    start = np.clip(np.minimum(lo, hi), 0, np.asarray(image.GetSize()) - 1)
    stop = np.clip(np.maximum(lo, hi), 0, np.asarray(image.GetSize()))
    size = np.maximum(stop - start, 1)
    return sitk.RegionOfInterest(image, [int(v) for v in size], [int(v) for v in start])


def _legacy(
    ct: sitk.Image, pet: sitk.Image, label: sitk.Image | None, bbox: BBox, config: PreprocessConfig
) -> tuple[sitk.Image, sitk.Image, sitk.Image | None, Geometry]:
    ct_crop = _legacy_crop(ct, bbox)
    reference = Geometry(
        size=config.size, spacing=config.spacing, origin=ct_crop.GetOrigin(), direction=ct_crop.GetDirection()
    )
    ct_out = resample_image(ct_crop, reference, interpolation=config.image_interpolation, fill=0.0)
    pet_out = resample_image(
        _legacy_crop(pet, bbox), reference, interpolation=config.image_interpolation, fill=0.0
    )
    label_out = None if label is None else resample_label(_legacy_crop(label, bbox), reference)
    return ct_out, pet_out, label_out, reference


def preprocess_images(
    ct: sitk.Image,
    pet: sitk.Image,
    label: sitk.Image | None = None,
    config: PreprocessConfig | None = None,
    *,
    bbox: BBox | None = None,
    table_bbox: BBox | None = None,
    patient_id: str = "",
    centre: str = "",
    label_path: PathLike | None = None,
) -> PreprocessedCase:
    """Preprocess images already in memory (see :func:`preprocess_case`).

    Parameters
    ----------
    ct, pet, label
        CT (HU), PET (SUV) and optional label map, each with its own grid.
    config
        Preprocessing settings.
    bbox
        Use this box as is (``box_source`` becomes ``"given"``).
    table_bbox
        The case's box from a table, for ``box_source`` ``"table"``/``"auto"``.
    patient_id, centre
        Identity of the case (in errors and the result).
    label_path
        Names the label file in errors.

    Raises
    ------
    GeometryError
        PET and CT do not overlap, the label is not on the CT grid, the box
        misses the CT or the PET, or no box can be found.
    """
    cfg = config or PreprocessConfig()
    who = _who(patient_id)
    ct_geo, pet_geo = Geometry.from_image(ct), Geometry.from_image(pet)
    label_geo = None if label is None else Geometry.from_image(label)
    if _overlap(ct_geo, pet_geo) <= 0:
        raise GeometryError(
            f"{who}PET and CT do not overlap in world coordinates "
            f"(CT {_bounds(ct_geo)}, PET {_bounds(pet_geo)})",
            hint="check that the PET belongs to this CT and that both origins are right",
        )
    if (
        label_geo is not None
        and cfg.check_label_grid
        and not _label_grid_matches(label_geo, ct_geo, cfg.label_grid_tolerance_voxels)
    ):
        raise GeometryError(
            f"{who}the label map is not on the CT grid (label {_describe(label_geo)}, CT {_describe(ct_geo)})",
            path=label_path,
            hint="resample the label onto the CT, or pass --no-check-label-grid to use it anyway",
        )
    if bbox is not None:
        box, source = bbox, "given"
    else:
        box, source = choose_box(cfg, pet=pet, label=label, table_bbox=table_bbox, patient_id=patient_id)
    for name, geo in (("CT", ct_geo), ("PET", pet_geo)):
        fraction = box_overlap_fraction(box, geo)
        if fraction <= 0:
            raise GeometryError(
                f"{who}the box {_box_text(box)} (from {source}) lies outside the {name} ({_bounds(geo)})",
                hint="check the box table's coordinates (world mm) and the image origins",
            )
        if fraction < 0.5:
            logger.warning("%sonly %.0f%% of the box lies inside the %s", who, 100 * fraction, name)
    if cfg.legacy:
        ct_out, pet_out, label_out, reference = _legacy(ct, pet, label, box, cfg)
    else:
        reference = reference_geometry(box, cfg)
        ref_image = reference.empty_image(sitk.sitkUInt8)
        clamp = cfg.clamp_bspline
        ct_out = resample_image(
            ct, ref_image, interpolation=cfg.image_interpolation, fill=cfg.ct_fill, clamp=clamp
        )
        pet_out = resample_image(
            pet, ref_image, interpolation=cfg.image_interpolation, fill=cfg.pet_fill, clamp=clamp
        )
        label_out = (
            None if label is None else resample_label(label, ref_image, interpolation=cfg.label_interpolation)
        )
    total, outside = count_label_voxels(label, box) if label is not None else ({}, {})
    return PreprocessedCase(
        patient_id=patient_id,
        centre=centre,
        ct=ct_out,
        pet=pet_out,
        label=label_out,
        reference=reference,
        ct_geometry=ct_geo,
        pet_geometry=pet_geo,
        bbox=box,
        box_source=source,
        label_geometry=label_geo,
        label_voxels=total,
        label_voxels_outside_box=outside,
    )


def preprocess_case(
    case: Case, config: PreprocessConfig | None = None, *, bbox: BBox | None = None
) -> PreprocessedCase:
    """Read one case and resample CT, PET (and label) onto its reference grid, in memory.

    Parameters
    ----------
    case
        The case (from :func:`hecktorseg.io.discover_cases` or built by hand).
    config
        Preprocessing settings.
    bbox
        Use this box instead of the one ``config.box_source`` picks.

    Returns
    -------
    PreprocessedCase
        Images on the reference grid plus everything the inverse mapping needs.

    Raises
    ------
    DataError
        A file is missing, unreadable, holds NaN, or label values are not whole numbers.
    GeometryError
        See :func:`preprocess_images`.
    """
    cfg = config or PreprocessConfig()
    requests: list[tuple[PathLike, ImageKind, Collection[int] | None]] = [
        (case.ct_path, "ct", None),
        (case.pet_path, "pet", None),
    ]
    if case.label_path is not None:
        requests.append((case.label_path, "label", allowed_labels(case.layout)))
    try:
        images = read_images(requests)
    except DataError as exc:
        raise DataError(f"{_who(case.patient_id)}{exc.message}", path=exc.path, hint=exc.hint) from None
    ct, pet = images[0], images[1]
    label = images[2] if len(images) > 2 else None
    return preprocess_images(
        ct,
        pet,
        label,
        cfg,
        bbox=bbox,
        table_bbox=case.bbox,
        patient_id=case.patient_id,
        centre=case.centre,
        label_path=case.label_path,
    )


def _bounds(geo: Geometry) -> str:
    lo, hi = geo.world_bounds()
    return "x {:.1f}..{:.1f}, y {:.1f}..{:.1f}, z {:.1f}..{:.1f} mm".format(
        *(v for pair in zip(lo, hi, strict=True) for v in pair)
    )


def _box_text(box: BBox) -> str:
    return f"x {box.x1:.1f}..{box.x2:.1f}, y {box.y1:.1f}..{box.y2:.1f}, z {box.z1:.1f}..{box.z2:.1f} mm"


def _describe(geo: Geometry) -> str:
    size = "×".join(str(v) for v in geo.size)
    spacing = ", ".join(f"{v:g}" for v in geo.spacing)
    origin = ", ".join(f"{v:.2f}" for v in geo.origin)
    return f"size {size}, spacing ({spacing}), origin ({origin})"
