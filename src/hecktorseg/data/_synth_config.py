"""Synthetic phantoms: their configuration (:class:`SyntheticConfig`), the in-memory :class:`Phantom` and the neck-level constants."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import SimpleITK as sitk

from hecktorseg.errors import ConfigError
from hecktorseg.io import (
    BBox,
)
from hecktorseg.typing import Triplet

NODE_COUNT_PROBABILITIES: tuple[float, ...] = (0.25, 0.3, 0.2, 0.15, 0.1)
"""``neck_levels`` phantoms (2025/2026): probability of 0, 1, 2, 3 and 4 lymph nodes."""
NODE_LEVELS: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "II": (0.5, (5.0, 50.0), (24.0, 34.0)),
    "III": (0.35, (50.0, 90.0), (26.0, 36.0)),
    "IV": (0.15, (90.0, 130.0), (30.0, 44.0)),
}
"""``neck_levels`` phantoms (2025/2026), per neck level: its probability, the depth (mm) of a
node's centre below the skull base (the brain's lowest point), and its distance (mm, × body
scale) lateral of the midline. A node lies on the primary's side with probability 0.75,
0–18 mm behind the body axis (the jugular chain) and at least 5 mm below the primary's centre.
The CT and PET grids of a phantom are made taller where needed so that every node lies inside."""
_SKULL_BASE_DEPTH_MM = 125.0  # the brain's lowest point below the vertex (_BRAIN_C + _BRAIN_R in d)


def _check_range(name: str, value: Sequence[float], *, positive: bool = True) -> None:
    lo, hi = value
    if not lo <= hi:
        raise ConfigError(f"synthetic.{name}: lower bound {lo} exceeds upper bound {hi}")
    if positive and lo < 0:
        raise ConfigError(f"synthetic.{name}: values must not be negative, got {tuple(value)}")


@attrs.frozen
class SyntheticConfig:
    """How synthetic phantoms look: grids, anatomy variation, intensities.

    The defaults give a CT of 128×128×72 voxels at 1.95×1.95×3.27 mm (a field
    of view of about 250×250×235 mm) and a PET of 64×64×80 voxels at
    4×4×3 mm; one case takes well under a second to make. Use
    :meth:`tiny` for unit tests (48×48×24 CT voxels, same field of view).
    Ranges ``(low, high)`` are sampled uniformly per case.
    """

    ct_size: tuple[int, int, int] = attrs.field(
        default=(128, 128, 72), metadata={"help": "CT matrix size (x, y, z) in voxels."}
    )
    ct_spacing: tuple[float, float, float] = attrs.field(
        default=(1.953125, 1.953125, 3.27), metadata={"help": "CT voxel size (x, y, z) in mm."}
    )
    pet_size: tuple[int, int, int] = attrs.field(
        default=(64, 64, 80), metadata={"help": "PET matrix size (x, y, z) in voxels."}
    )
    pet_spacing: tuple[float, float, float] = attrs.field(
        default=(4.0, 4.0, 3.0), metadata={"help": "PET voxel size (x, y, z) in mm."}
    )
    origin_jitter_mm: float = attrs.field(
        default=8.0, metadata={"help": "Largest random shift (mm) of each grid's position per case."}
    )
    rotation_deg: float = attrs.field(
        default=0.0,
        metadata={
            "help": "Largest random rotation (degrees, about z) of the image grids; "
            "0 keeps the identity direction of real HECKTOR images."
        },
    )
    body_scale: tuple[float, float] = attrs.field(
        default=(0.9, 1.1), metadata={"help": "Range of the in-plane body size factor."}
    )
    ct_noise_hu: float = attrs.field(default=10.0, metadata={"help": "Standard deviation of CT noise (HU)."})
    tumour_contrast_hu: float = attrs.field(
        default=20.0, metadata={"help": "CT density of tumour and nodes above soft tissue (HU)."}
    )
    tumour_radius_mm: tuple[float, float] = attrs.field(
        default=(9.0, 16.0), metadata={"help": "Range of the primary tumour's main radius (mm)."}
    )
    tumour_suv: tuple[float, float] = attrs.field(
        default=(5.0, 20.0), metadata={"help": "Range of the primary tumour's uptake (SUV)."}
    )
    brain_suv: tuple[float, float] = attrs.field(
        default=(8.0, 12.0), metadata={"help": "Range of the brain's uptake (SUV)."}
    )
    background_suv: float = attrs.field(default=1.0, metadata={"help": "Soft-tissue uptake (SUV)."})
    pet_fwhm_mm: float = attrs.field(default=6.0, metadata={"help": "PET resolution: Gaussian FWHM (mm)."})
    pet_noise: float = attrs.field(
        default=0.15, metadata={"help": "PET noise level (relative, scales with sqrt(activity))."}
    )
    node_count: tuple[int, int] = attrs.field(
        default=(1, 3), metadata={"help": "Range of the number of lymph nodes (when drawn)."}
    )
    node_radius_mm: tuple[float, float] = attrs.field(
        default=(5.0, 8.0), metadata={"help": "Range of lymph node radii (mm)."}
    )
    node_suv: tuple[float, float] = attrs.field(
        default=(3.0, 8.0), metadata={"help": "Range of lymph node uptake (SUV)."}
    )
    unlabelled_nodes: bool = attrs.field(
        default=False,
        metadata={
            "help": "Draw lymph nodes in the images even when they are not labelled "
            "(as in HECKTOR 2020/2021, where only GTVt is contoured)."
        },
    )
    box_size_mm: float = attrs.field(default=144.0, metadata={"help": "Edge of the head-and-neck box (mm)."})
    box_jitter_mm: float = attrs.field(
        default=3.0,
        metadata={"help": "Random variation (mm) of the 2020-style box edges; 2021 boxes are exact."},
    )
    compress: bool = attrs.field(default=True, metadata={"help": "Write gzip-compressed NIfTI (.nii.gz)."})

    def __attrs_post_init__(self) -> None:
        for name in ("ct_size", "pet_size"):
            size = getattr(self, name)
            if min(size) < 4:
                raise ConfigError(f"synthetic.{name}: every axis needs at least 4 voxels, got {size}")
        for name in ("ct_spacing", "pet_spacing"):
            spacing = getattr(self, name)
            if not all(np.isfinite(s) and s > 0 for s in spacing):
                raise ConfigError(f"synthetic.{name}: spacing must be positive, got {spacing}")
        for name in (
            "body_scale",
            "tumour_radius_mm",
            "tumour_suv",
            "brain_suv",
            "node_radius_mm",
            "node_suv",
        ):
            _check_range(name, getattr(self, name))
        _check_range("node_count", self.node_count)
        if self.tumour_radius_mm[0] <= 0:
            raise ConfigError("synthetic.tumour_radius_mm: the tumour radius must be positive")
        for name in ("ct_noise_hu", "pet_noise", "pet_fwhm_mm", "origin_jitter_mm", "box_jitter_mm"):
            if getattr(self, name) < 0:
                raise ConfigError(f"synthetic.{name}: must not be negative, got {getattr(self, name)}")
        if self.box_size_mm <= 2 * self.box_jitter_mm:
            raise ConfigError(f"synthetic.box_size_mm: {self.box_size_mm} is too small")

    @classmethod
    def tiny(cls, **changes: Any) -> SyntheticConfig:
        """A fast, coarse configuration for tests: CT 48×48×24, PET 32×32×30, same field of view.

        Parameters
        ----------
        **changes
            Further field values to override.
        """
        base = cls(
            ct_size=(48, 48, 24),
            ct_spacing=(5.2, 5.2, 9.8),
            pet_size=(32, 32, 30),
            pet_spacing=(8.0, 8.0, 8.0),
            tumour_radius_mm=(12.0, 18.0),
            node_radius_mm=(7.0, 10.0),
        )
        return attrs.evolve(base, **changes)


@attrs.frozen
class Phantom:
    """One synthetic patient, in memory.

    Attributes
    ----------
    patient_id
        The identifier (``CHGJ001``, ``CHUM-003``).
    ct
        CT in HU (float32) on its own grid.
    pet
        PET in SUV (float32) on a coarser grid with a different origin and extent.
    label
        Label map (uint8) on the CT grid: 1 primary tumour, 2 lymph nodes (only with ``with_nodes``).
    bbox
        Head-and-neck box (world mm), about ``config.box_size_mm`` on each side.
    tumour_center_mm
        World position (x, y, z) of the centre of the tumour's main lobe.
    tumour_radius_mm
        The main lobe's nominal radius (mm).
    node_centers_mm
        World positions of the labelled lymph nodes (empty if none).
    brain_center_mm
        World position of the centre of the brain.
    has_primary
        Whether the patient has a primary tumour; without one (a 2025/2026 phantom with
        nodes only) ``tumour_center_mm`` is where it would have been and label 1 is absent.
    node_radii_mm
        Radii (x, y, z) of the labelled nodes, in the order of ``node_centers_mm``.
    """

    patient_id: str
    ct: sitk.Image
    pet: sitk.Image
    label: sitk.Image
    bbox: BBox
    tumour_center_mm: Triplet
    tumour_radius_mm: float
    node_centers_mm: tuple[Triplet, ...] = ()
    brain_center_mm: Triplet = (0.0, 0.0, 0.0)
    has_primary: bool = True
    node_radii_mm: tuple[Triplet, ...] = ()


# --------------------------------------------------------------------------------------------------
