"""Image geometry records: size, spacing, origin and direction of a 3-D grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
import SimpleITK as sitk

from hecktorseg.errors import GeometryError
from hecktorseg.typing import FloatArray, Triplet, TripletInt

__all__ = ["IDENTITY_DIRECTION", "Geometry"]

IDENTITY_DIRECTION: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
"""Row-major 3×3 identity direction matrix."""


def _triplet(values: Sequence[float]) -> Triplet:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


def _triplet_int(values: Sequence[int]) -> TripletInt:
    a, b, c = (int(v) for v in values)
    return (a, b, c)


def _direction(values: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(v) for v in values)
    if len(out) != 9:
        raise GeometryError(f"a 3-D direction matrix needs 9 values, got {len(out)}")
    return out


@attrs.frozen
class Geometry:
    """The physical grid of a 3-D image, in SimpleITK (x, y, z) order.

    World coordinates of voxel index ``i`` are ``origin + D @ (spacing * i)``
    with ``D`` the row-major ``direction`` matrix, as in ITK.

    Attributes
    ----------
    size
        Number of voxels along x, y, z.
    spacing
        Voxel size in millimetres along x, y, z.
    origin
        World position (mm) of the centre of voxel (0, 0, 0).
    direction
        Row-major 3×3 direction cosine matrix (9 values).
    """

    size: TripletInt = attrs.field(converter=_triplet_int)
    spacing: Triplet = attrs.field(converter=_triplet)
    origin: Triplet = attrs.field(converter=_triplet, default=(0.0, 0.0, 0.0))
    direction: tuple[float, ...] = attrs.field(converter=_direction, default=IDENTITY_DIRECTION)

    @spacing.validator
    def _check_spacing(self, _attr: attrs.Attribute[Triplet], value: Triplet) -> None:
        if not all(np.isfinite(v) and v > 0 for v in value):
            raise GeometryError(f"spacing must be positive and finite, got {value}")

    @size.validator
    def _check_size(self, _attr: attrs.Attribute[TripletInt], value: TripletInt) -> None:
        if not all(v > 0 for v in value):
            raise GeometryError(f"size must be positive, got {value}")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_image(cls, image: sitk.Image) -> Geometry:
        """Read the geometry of a 3-D SimpleITK image."""
        if image.GetDimension() != 3:
            raise GeometryError(f"expected a 3-D image, got {image.GetDimension()}-D")
        return cls(
            size=image.GetSize(),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=image.GetDirection(),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Geometry:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                size=data["size"],
                spacing=data["spacing"],
                origin=data["origin"],
                direction=data["direction"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GeometryError(f"invalid geometry record {dict(data)!r}: {exc}") from None

    def to_dict(self) -> dict[str, list[float] | list[int]]:
        """A JSON-friendly dictionary (lists of numbers)."""
        return {
            "size": list(self.size),
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }

    # -- derived quantities -------------------------------------------------------------------
    @property
    def direction_matrix(self) -> FloatArray:
        """The direction as a 3×3 array."""
        return np.asarray(self.direction, dtype=np.float64).reshape(3, 3)

    @property
    def shape_zyx(self) -> TripletInt:
        """Shape of the NumPy array SimpleITK returns for this grid (z, y, x)."""
        return (self.size[2], self.size[1], self.size[0])

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel in mm³."""
        return float(np.prod(self.spacing))

    def index_to_world(self, index: FloatArray | Sequence[float]) -> FloatArray:
        """Map continuous (x, y, z) indices (shape ``(..., 3)``) to world millimetres."""
        idx = np.asarray(index, dtype=np.float64)
        scaled = idx * np.asarray(self.spacing)
        world: FloatArray = np.asarray(self.origin) + scaled @ self.direction_matrix.T
        return world

    def world_to_index(self, point: FloatArray | Sequence[float]) -> FloatArray:
        """Map world millimetres (shape ``(..., 3)``) to continuous (x, y, z) indices."""
        pts = np.asarray(point, dtype=np.float64) - np.asarray(self.origin)
        index: FloatArray = (pts @ np.linalg.inv(self.direction_matrix).T) / np.asarray(self.spacing)
        return index

    def corners_world(self) -> FloatArray:
        """World coordinates of the 8 outer corners of the grid (voxel edges), shape (8, 3)."""
        lo = np.full(3, -0.5)
        hi = np.asarray(self.size, dtype=np.float64) - 0.5
        corners = np.array(
            [[(lo, hi)[i][0], (lo, hi)[j][1], (lo, hi)[k][2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)]
        )
        return self.index_to_world(corners)

    def world_bounds(self) -> tuple[FloatArray, FloatArray]:
        """Axis-aligned world bounding box (lower, upper) of the grid's extent in mm."""
        corners = self.corners_world()
        return corners.min(axis=0), corners.max(axis=0)

    def is_close(self, other: Geometry, *, rtol: float = 1e-5, atol: float = 1e-3) -> bool:
        """Whether two grids are the same up to floating-point noise."""
        return (
            self.size == other.size
            and bool(np.allclose(self.spacing, other.spacing, rtol=rtol, atol=atol))
            and bool(np.allclose(self.origin, other.origin, rtol=rtol, atol=atol))
            and bool(np.allclose(self.direction, other.direction, rtol=rtol, atol=atol))
        )

    # -- SimpleITK bridges --------------------------------------------------------------------
    def apply_to(self, image: sitk.Image) -> sitk.Image:
        """Stamp this geometry's spacing, origin and direction onto ``image`` (in place)."""
        if tuple(image.GetSize()) != self.size:
            raise GeometryError(f"image size {image.GetSize()} does not match geometry {self.size}")
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def empty_image(self, pixel_id: int = sitk.sitkFloat32) -> sitk.Image:
        """A zero-filled SimpleITK image on this grid (a resampling reference)."""
        image = sitk.Image(list(self.size), pixel_id)
        return self.apply_to(image)
