"""Bounding boxes in world millimetres, as in the HECKTOR box tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from hecktorseg.errors import GeometryError
from hecktorseg.typing import FloatArray

__all__ = ["BBox"]


@attrs.frozen
class BBox:
    """An axis-aligned box in world millimetres (columns of the HECKTOR ``bbox.csv``).

    ``(x1, y1, z1)`` is the lower corner and ``(x2, y2, z2)`` the upper corner.
    """

    x1: float = attrs.field(converter=float)
    x2: float = attrs.field(converter=float)
    y1: float = attrs.field(converter=float)
    y2: float = attrs.field(converter=float)
    z1: float = attrs.field(converter=float)
    z2: float = attrs.field(converter=float)

    def __attrs_post_init__(self) -> None:
        values = (self.x1, self.x2, self.y1, self.y2, self.z1, self.z2)
        if not all(np.isfinite(v) for v in values):
            raise GeometryError(f"box coordinates must be finite numbers, got {values}")
        for lo, hi, axis in (
            (self.x1, self.x2, "x"),
            (self.y1, self.y2, "y"),
            (self.z1, self.z2, "z"),
        ):
            if not lo < hi:
                raise GeometryError(f"box has {axis}1={lo} not below {axis}2={hi}")

    @classmethod
    def from_center(cls, center: Sequence[float], size: Sequence[float]) -> BBox:
        """A box of the given ``size`` (mm, x/y/z) centred on ``center`` (mm)."""
        c = np.asarray(center, dtype=np.float64)
        half = np.asarray(size, dtype=np.float64) / 2.0
        lo, hi = c - half, c + half
        return cls(lo[0], hi[0], lo[1], hi[1], lo[2], hi[2])

    @classmethod
    def from_corners(cls, lower: Sequence[float], upper: Sequence[float]) -> BBox:
        """A box from its lower and upper corners (x, y, z)."""
        return cls(lower[0], upper[0], lower[1], upper[1], lower[2], upper[2])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BBox:
        """Inverse of :meth:`to_dict`."""
        return cls(*(data[k] for k in ("x1", "x2", "y1", "y2", "z1", "z2")))

    def to_dict(self) -> dict[str, float]:
        """``{"x1": …, "x2": …, …}``."""
        return attrs.asdict(self)

    @property
    def lower(self) -> FloatArray:
        """Lower corner (x1, y1, z1) in mm."""
        return np.array([self.x1, self.y1, self.z1])

    @property
    def upper(self) -> FloatArray:
        """Upper corner (x2, y2, z2) in mm."""
        return np.array([self.x2, self.y2, self.z2])

    @property
    def size(self) -> FloatArray:
        """Edge lengths (mm) along x, y, z."""
        return self.upper - self.lower

    @property
    def center(self) -> FloatArray:
        """Centre of the box in mm."""
        return (self.lower + self.upper) / 2.0
