"""Phantom helpers for the preprocessing tests: spheres at known world coordinates on arbitrary grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from hecktorseg.io import BBox, Case, Geometry, array_to_image

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
PERMUTED = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0)  # index x→world z, y→x, z→y
FLIPPED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)  # RAS-style storage
PERMUTED_FLIPPED = (0.0, 0.0, -1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)

SPHERE_CENTRE = np.array([12.3, -40.7, 101.9])
SPHERE_RADIUS = 9.0
CT_INSIDE, CT_OUTSIDE = 200.0, -1000.0  # air outside: a plausible CT
PET_INSIDE, PET_OUTSIDE = 10.0, 1.0


def grid_centred_on(
    centre: Sequence[float], size: Sequence[int], spacing: Sequence[float], direction: Sequence[float]
) -> Geometry:
    """A grid whose middle lies at ``centre`` (world mm)."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    half = (np.asarray(size, dtype=float) - 1) / 2 * np.asarray(spacing, dtype=float)
    origin = np.asarray(centre, dtype=float) - d @ half
    return Geometry(
        size=tuple(size), spacing=tuple(spacing), origin=tuple(origin), direction=tuple(direction)
    )


def world_grid(geometry: Geometry) -> np.ndarray:
    """World coordinates of every voxel centre, shape (z, y, x, 3)."""
    nx, ny, nz = geometry.size
    k, j, i = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    return geometry.index_to_world(np.stack([i, j, k], axis=-1).astype(float))


def sphere_image(
    geometry: Geometry,
    inside: float,
    outside: float,
    *,
    centre: Sequence[float] = tuple(SPHERE_CENTRE),
    radius: float = SPHERE_RADIUS,
    dtype: type = np.float32,
) -> sitk.Image:
    """An image on ``geometry`` holding ``inside`` within the sphere and ``outside`` elsewhere."""
    dist = np.linalg.norm(world_grid(geometry) - np.asarray(centre), axis=-1)
    array = np.where(dist <= radius, inside, outside).astype(dtype)
    return array_to_image(array, geometry)


def write_case(
    root: Path,
    patient_id: str,
    *,
    ct_geometry: Geometry,
    pet_geometry: Geometry,
    with_label: bool = True,
    bbox: BBox | None = None,
    label_value: int = 1,
) -> Case:
    """Write a sphere phantom (CT, PET, label on the CT grid) and return its Case."""
    folder = root / patient_id
    folder.mkdir(parents=True, exist_ok=True)
    ct = sphere_image(ct_geometry, CT_INSIDE, CT_OUTSIDE)
    pet = sphere_image(pet_geometry, PET_INSIDE, PET_OUTSIDE)
    paths = {"ct": folder / f"{patient_id}_ct.nii.gz", "pet": folder / f"{patient_id}_pt.nii.gz"}
    sitk.WriteImage(ct, str(paths["ct"]), True)
    sitk.WriteImage(pet, str(paths["pet"]), True)
    label_path = None
    if with_label:
        label = sphere_image(ct_geometry, label_value, 0, dtype=np.uint8)
        label_path = folder / f"{patient_id}_ct_gtvt.nii.gz"
        sitk.WriteImage(label, str(label_path), True)
    return Case(
        patient_id=patient_id,
        centre=patient_id[:4],
        ct_path=paths["ct"],
        pet_path=paths["pet"],
        label_path=label_path,
        bbox=bbox,
    )


def default_box(size_mm: float = 48.0) -> BBox:
    """A box around the sphere, off-centre so a wrong axis order shows."""
    return BBox.from_center(SPHERE_CENTRE + np.array([3.1, -2.2, 1.7]), (size_mm,) * 3)


def simple_case(root: Path, patient_id: str, *, with_label: bool = True) -> Case:
    """A small, quick phantom: CT 40×40×20 at 2×2×3 mm, PET 24×24×16 at 4×4×4 mm, a table box."""
    ct_geo = grid_centred_on(SPHERE_CENTRE, (40, 40, 20), (2.0, 2.0, 3.0), IDENTITY)
    pet_geo = grid_centred_on(SPHERE_CENTRE + 5.0, (24, 24, 16), (4.0, 4.0, 4.0), IDENTITY)
    return write_case(
        root, patient_id, ct_geometry=ct_geo, pet_geometry=pet_geo, bbox=default_box(), with_label=with_label
    )
