"""Synthetic head-and-neck PET/CT phantoms: the dataset that ships with hecktorseg.

Real HECKTOR images cannot be redistributed, so hecktorseg generates phantoms
that exercise everything real data does:

* a CT on its own grid, in Hounsfield units: air (−1000) around an elliptic
  head-and-neck body with a thin fat layer, soft tissue (≈40 HU), an airway,
  bone (≥ 700 HU: skull, mandible, cervical spine) and a brain;
* a PET on a coarser grid with a *different origin and extent*, in SUV: 0 in
  air, ≈1 in the body, a high-uptake brain (SUV 8–12), mildly active salivary
  glands and the primary tumour (SUV 5–20), blurred to PET resolution
  (Gaussian, 6 mm FWHM by default) with activity-dependent noise;
* the primary tumour (GTVt, label 1) as an irregular blob (a union of
  ellipsoids with a wavy surface) in the oropharynx, below the brain and in
  front of the spine; it is bright on PET and slightly denser on CT
  (+20 HU by default). Its mask lives on the CT grid;
* optionally lymph nodes (GTVn, label 2): in the 2022 layout lateral to the tumour; in the
  2025/2026 layouts 0–4 FDG-avid nodes at neck levels II–IV, lateral to and below the primary
  (:data:`NODE_LEVELS`, :data:`NODE_COUNT_PROBABILITIES`), with taller grids where a node lies
  low, one patient without nodes and one without a primary tumour;
* a head-and-neck box of about 144 mm (like the challenge's ``bbox.csv``);
* for 2025/2026, a clinical table with the edition's columns (:func:`clinical_row`), some
  values missing.

What is written for each edition (ids, centres, nodes, tables) comes from the layout records
(:attr:`hecktorseg.io.LayoutSpec.synth`).

All shapes are defined in world millimetres and evaluated at the voxel centres
of each grid (:meth:`hecktorseg.io.Geometry.index_to_world`), so CT, PET and
mask agree physically whatever the grids. A phantom depends only on
``(patient_id, seed, config)``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import attrs
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from scipy import ndimage

from hecktorseg.errors import ConfigError, DataError, LayoutError
from hecktorseg.io import (
    BBox,
    Case,
    ClinicalInfo,
    ClinicalValue,
    Geometry,
    Layout,
    LayoutSpec,
    array_to_image,
    atomic_write_bytes,
    atomic_write_text,
    centre_of,
    layout_paths,
    layout_spec,
    parse_layout,
    write_bbox_table,
    write_image,
)
from hecktorseg.io.layout_specs import NodeModel
from hecktorseg.typing import FloatArray, PathLike, ProgressCallback, Triplet

_Vec: TypeAlias = "Sequence[float] | FloatArray"

__all__ = [
    "NODE_COUNT_PROBABILITIES",
    "NODE_LEVELS",
    "Phantom",
    "SyntheticConfig",
    "clinical_row",
    "make_phantom",
    "synthetic_patient_ids",
    "write_synthetic_dataset",
]

logger = logging.getLogger(__name__)

CENTRES_2020: tuple[str, ...] = ("CHGJ", "CHMR", "CHUM", "CHUS")
"""Training centres of HECKTOR 2020, cycled through by the patient ids."""
CENTRES_2021: tuple[str, ...] = ("CHGJ", "CHMR", "CHUM", "CHUS", "CHUP")
"""Training centres of HECKTOR 2021 (2020's plus CHUP)."""
CENTRES_2022: tuple[str, ...] = ("CHUM", "CHUP", "CHUS", "CHUV", "HGJ", "HMR", "MDA", "USZ", "CHB")
"""Centres of HECKTOR 2022 (ids such as ``CHUM-001``)."""

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
# Anatomy (in "anatomy coordinates": u = x - x0 (left), v = y - y0 (posterior), d = depth below vertex)
# --------------------------------------------------------------------------------------------------
@attrs.frozen
class _Blob:
    center: FloatArray  # (u, v, d) mm
    radii: FloatArray  # (3,) mm


@attrs.frozen
class _Anatomy:
    x0: float
    y0: float
    z_vertex: float
    scale: float
    brain_suv: float
    tumour_suv: float
    tumour_lobes: tuple[_Blob, ...]
    waves: FloatArray  # (n, 4): wave vector (3) and phase
    wave_amplitude: float
    nodes: tuple[_Blob, ...]
    node_suvs: tuple[float, ...]
    nodes_labelled: bool
    has_primary: bool = True

    def to_uvd(self, world: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        return world[..., 0] - self.x0, world[..., 1] - self.y0, self.z_vertex - world[..., 2]

    def to_world(self, uvd: _Vec) -> Triplet:
        u, v, d = (float(t) for t in uvd)
        return (u + self.x0, v + self.y0, self.z_vertex - d)


def _q(u: FloatArray, v: FloatArray, d: FloatArray, center: _Vec, radii: _Vec) -> FloatArray:
    """Squared normalised distance to an ellipsoid's centre (< 1 inside)."""
    out: FloatArray = (
        ((u - center[0]) / radii[0]) ** 2
        + ((v - center[1]) / radii[1]) ** 2
        + ((d - center[2]) / radii[2]) ** 2
    )
    return out


def _q2(u: FloatArray, v: FloatArray, center: _Vec, radii: _Vec) -> FloatArray:
    """Squared normalised distance to an ellipse's centre in the axial plane."""
    out: FloatArray = ((u - center[0]) / radii[0]) ** 2 + ((v - center[1]) / radii[1]) ** 2
    return out


def _neck_level_nodes(
    rng: np.random.Generator,
    config: SyntheticConfig,
    primary: FloatArray,
    scale: float,
    n_nodes: int | None,
    with_primary: bool,
) -> tuple[list[_Blob], list[float]]:
    """Lymph nodes at neck levels II–IV: lateral to and below the primary (see :data:`NODE_LEVELS`)."""
    count = int(rng.choice(len(NODE_COUNT_PROBABILITIES), p=NODE_COUNT_PROBABILITIES))
    if n_nodes is not None:
        count = n_nodes
    elif not with_primary:
        count = max(count, 1)  # a patient without a GTVp has nodes (otherwise there is nothing to see)
    ipsilateral = 1.0 if primary[0] >= 0 else -1.0
    names = list(NODE_LEVELS)
    p_level = np.array([NODE_LEVELS[n][0] for n in names])
    nodes: list[_Blob] = []
    suvs: list[float] = []
    for _ in range(count):
        for _attempt in range(20):  # keep nodes apart, so each one is its own lesion
            side = ipsilateral if rng.random() < 0.75 else -ipsilateral
            _, (lo, hi), (lat_lo, lat_hi) = NODE_LEVELS[names[int(rng.choice(len(names), p=p_level))]]
            depth = max(_SKULL_BASE_DEPTH_MM + float(rng.uniform(lo, hi)), float(primary[2]) + 5.0)
            c = np.array([side * scale * rng.uniform(lat_lo, lat_hi), rng.uniform(0.0, 18.0), depth])
            radii = rng.uniform(*config.node_radius_mm) * rng.uniform(0.8, 1.2, 3)
            apart = all(
                np.linalg.norm(c - b.center) > float(np.max(radii) + np.max(b.radii)) + 3.0 for b in nodes
            )
            if apart:
                break
        nodes.append(_Blob(center=c, radii=radii))
        suvs.append(float(rng.uniform(*config.node_suv)))
    return nodes, suvs


def _sample_anatomy(
    rng: np.random.Generator,
    config: SyntheticConfig,
    *,
    with_nodes: bool,
    node_model: NodeModel = "lateral",
    n_nodes: int | None = None,
    with_primary: bool = True,
) -> _Anatomy:
    x0, y0 = rng.uniform(-10.0, 10.0, size=2)
    z_vertex = float(rng.uniform(-120.0, -80.0))
    scale = float(rng.uniform(*config.body_scale))
    # primary tumour in the oropharynx: below the brain, in front of the spine
    center = np.array([rng.uniform(-12.0, 12.0), rng.uniform(-10.0, 6.0), rng.uniform(128.0, 160.0)])
    r = float(rng.uniform(*config.tumour_radius_mm))
    lobes = [_Blob(center=center, radii=r * rng.uniform(0.85, 1.15, size=3))]
    for _ in range(int(rng.integers(1, 4))):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction) + 1e-12
        lobes.append(
            _Blob(
                center=center + direction * r * rng.uniform(0.4, 0.7),
                radii=r * rng.uniform(0.45, 0.7, size=3),
            )
        )
    n_waves = 3
    wave_dirs = rng.normal(size=(n_waves, 3))
    wave_dirs /= np.linalg.norm(wave_dirs, axis=1, keepdims=True)
    wavelength = rng.uniform(0.8, 1.4, size=(n_waves, 1)) * r
    waves = np.concatenate([wave_dirs * (2 * np.pi / wavelength), rng.uniform(0, 2 * np.pi, (n_waves, 1))], 1)
    nodes: list[_Blob] = []
    node_suvs: list[float] = []
    if with_nodes and node_model == "neck_levels":
        nodes, node_suvs = _neck_level_nodes(rng, config, center, scale, n_nodes, with_primary)
    elif with_nodes or config.unlabelled_nodes:
        lo, hi = config.node_count
        for _ in range(int(rng.integers(lo, hi + 1))):
            side = 1.0 if rng.random() < 0.5 else -1.0
            c = np.array([side * rng.uniform(30.0, 42.0), rng.uniform(-5.0, 18.0), rng.uniform(150.0, 182.0)])
            nodes.append(
                _Blob(center=c, radii=rng.uniform(*config.node_radius_mm) * rng.uniform(0.8, 1.2, 3))
            )
            node_suvs.append(float(rng.uniform(*config.node_suv)))
    return _Anatomy(
        x0=float(x0),
        y0=float(y0),
        z_vertex=z_vertex,
        scale=scale,
        brain_suv=float(rng.uniform(*config.brain_suv)),
        tumour_suv=float(rng.uniform(*config.tumour_suv)),
        tumour_lobes=tuple(lobes),
        waves=waves,
        wave_amplitude=0.12,
        nodes=tuple(nodes),
        node_suvs=tuple(node_suvs),
        nodes_labelled=with_nodes,
        has_primary=with_primary,
    )


_BRAIN_C = (0.0, 5.0, 70.0)
_BRAIN_R = (60.0, 75.0, 55.0)


def _body_q(an: _Anatomy, u: FloatArray, v: FloatArray, d: FloatArray, shrink: float = 0.0) -> FloatArray:
    """Normalised 'distance' to the body surface (< 1 inside): head ellipsoid ∪ neck cylinder."""
    s = an.scale
    head = _q(u, v, d, (0.0, 0.0, 85.0), (76.0 * s - shrink, 92.0 * s - shrink, 88.0 - shrink))
    widen = 1.0 + np.clip(d - 190.0, 0.0, None) / 60.0  # shoulders start below the neck
    neck = _q2(u, v, (0.0, 8.0), (52.0 * s * widen - shrink, 60.0 * s - shrink))
    neck = np.where(d > 115.0 + shrink, neck, np.inf)
    out: FloatArray = np.minimum(head, neck)
    return out


def _tumour_f(an: _Anatomy, u: FloatArray, v: FloatArray, d: FloatArray) -> FloatArray:
    """Implicit tumour function (< 1 inside): union of lobes with a wavy surface."""
    f = np.full(u.shape, np.inf)
    for lobe in an.tumour_lobes:
        f = np.minimum(f, np.sqrt(_q(u, v, d, lobe.center, lobe.radii)))
    wobble = np.zeros(u.shape)
    for kx, ky, kz, phase in an.waves:
        wobble += np.sin(kx * u + ky * v + kz * d + phase)
    out: FloatArray = f + an.wave_amplitude * wobble / len(an.waves)
    return out


def _block(
    an: _Anatomy, geometry: Geometry, center_uvd: _Vec, extent_mm: float
) -> tuple[slice, slice, slice]:
    """The (z, y, x) index block of ``geometry`` covering a cube of half-edge ``extent_mm``."""
    c = np.asarray(an.to_world(center_uvd))
    offsets = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * extent_mm
    idx = geometry.world_to_index(c + offsets)
    lo = np.clip(np.floor(idx.min(axis=0)).astype(int), 0, np.asarray(geometry.size))
    hi = np.clip(np.ceil(idx.max(axis=0)).astype(int) + 1, 0, np.asarray(geometry.size))
    return slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0])


def _tumour_extent(an: _Anatomy, geometry: Geometry) -> float:
    c0 = an.tumour_lobes[0].center
    reach = max(float(np.linalg.norm(b.center - c0) + np.max(b.radii)) for b in an.tumour_lobes)
    return reach / (1.0 - an.wave_amplitude) + 2.0 * max(geometry.spacing)


def _node_extent(blob: _Blob, geometry: Geometry) -> float:
    return float(np.max(blob.radii)) + 2.0 * max(geometry.spacing)


def _world_points(geometry: Geometry) -> FloatArray:
    iz, iy, ix = np.indices(geometry.shape_zyx, dtype=np.float64)
    return geometry.index_to_world(np.stack([ix, iy, iz], axis=-1))


def _make_ct(
    an: _Anatomy, geometry: Geometry, config: SyntheticConfig, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    u, v, d = an.to_uvd(_world_points(geometry))
    body = _body_q(an, u, v, d) < 1.0
    inner = _body_q(an, u, v, d, shrink=5.0) < 1.0
    ct = np.full(u.shape, -1000.0)
    ct[body] = -90.0  # subcutaneous fat
    ct[inner] = 40.0  # soft tissue
    brain = _q(u, v, d, _BRAIN_C, _BRAIN_R) < 1.0
    ct[brain] = 33.0
    airway = (_q2(u, v, (0.0, 16.0), (6.0, 6.0)) < 1.0) & (d > 128.0) & inner
    ct[airway] = -950.0
    label = np.zeros(u.shape, dtype=np.uint8)
    tumour = np.zeros(u.shape, dtype=bool)
    if an.has_primary:
        b = _block(an, geometry, an.tumour_lobes[0].center, _tumour_extent(an, geometry))
        tumour[b] = _tumour_f(an, u[b], v[b], d[b]) < 1.0
    for blob in an.nodes:
        node = np.zeros(u.shape, dtype=bool)
        b = _block(an, geometry, blob.center, _node_extent(blob, geometry))
        node[b] = _q(u[b], v[b], d[b], blob.center, blob.radii) < 1.0
        ct[node] = 40.0 + config.tumour_contrast_hu
        if an.nodes_labelled:
            label[node] = 2
    ct[tumour] = 40.0 + config.tumour_contrast_hu
    label[tumour] = 1
    # bone: skull (cranium shell), mandible arc, cervical spine
    skull_r = tuple(r + 7.0 for r in _BRAIN_R)
    skull = (_q(u, v, d, _BRAIN_C, skull_r) < 1.0) & ~brain & (d < 118.0)
    ring = np.sqrt(u**2 + (v + 6.0) ** 2)
    mandible = (ring > 36.0 * an.scale) & (ring < 43.0 * an.scale) & (v < -6.0) & (np.abs(d - 150.0) < 8.0)
    spine = (_q2(u, v, (0.0, 38.0), (11.0, 11.0)) < 1.0) & (d > 112.0)
    ct[(skull | spine) & body] = 900.0
    ct[mandible & body] = 1200.0
    if (
        an.has_primary and not tumour.any()
    ):  # a tiny grid can miss a small tumour: keep one voxel so the label is not empty
        centre_idx = np.rint(geometry.world_to_index(an.to_world(an.tumour_lobes[0].center))).astype(int)
        ix, iy, iz = np.clip(centre_idx, 0, np.asarray(geometry.size) - 1)
        label[iz, iy, ix] = 1
    if config.ct_noise_hu > 0:
        ct += rng.normal(0.0, config.ct_noise_hu, size=ct.shape)
    ct = np.clip(np.rint(ct), -1024.0, 3071.0)
    return ct.astype(np.float32), label


def _make_pet(
    an: _Anatomy, geometry: Geometry, config: SyntheticConfig, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    u, v, d = an.to_uvd(_world_points(geometry))
    body = _body_q(an, u, v, d) < 1.0
    act = np.where(body, config.background_suv, 0.0)
    act[_q(u, v, d, _BRAIN_C, _BRAIN_R) < 1.0] = an.brain_suv
    for side in (-1.0, 1.0):  # parotid glands: mild physiological uptake
        act[_q(u, v, d, (side * 38.0 * an.scale, 15.0, 140.0), (10.0, 14.0, 18.0)) < 1.0] = 2.0
    airway = (_q2(u, v, (0.0, 16.0), (6.0, 6.0)) < 1.0) & (d > 128.0)
    act[airway & body] = 0.2
    voxel = float(np.mean(geometry.spacing))
    for blob, suv in zip(an.nodes, an.node_suvs, strict=True):
        b = _block(an, geometry, blob.center, _node_extent(blob, geometry))
        q = np.sqrt(_q(u[b], v[b], d[b], blob.center, blob.radii))
        frac = np.clip(0.5 + (1.0 - q) * float(np.mean(blob.radii)) / voxel, 0.0, 1.0)
        act[b] = np.maximum(act[b], frac * suv)
    if an.has_primary:
        b = _block(an, geometry, an.tumour_lobes[0].center, _tumour_extent(an, geometry))
        f = _tumour_f(an, u[b], v[b], d[b])
        r = float(np.mean(an.tumour_lobes[0].radii))
        frac = np.clip(0.5 + (1.0 - f) * r / voxel, 0.0, 1.0)  # partial-volume edge at voxel scale
        heterogeneity = 0.85 + 0.15 * np.clip(1.0 - f, 0.0, 1.0)
        act[b] = np.maximum(act[b], frac * an.tumour_suv * heterogeneity)
    if config.pet_noise > 0:
        act = act + rng.normal(size=act.shape) * config.pet_noise * np.sqrt(np.maximum(act, 0.0))
    if config.pet_fwhm_mm > 0:
        sigma_xyz = config.pet_fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / np.asarray(geometry.spacing)
        act = ndimage.gaussian_filter(act, sigma=sigma_xyz[::-1], mode="constant")
    out: npt.NDArray[np.float32] = np.clip(act, 0.0, None).astype(np.float32)
    return out


def _rng(patient_id: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(patient_id.encode("utf-8")).digest()
    return np.random.default_rng(
        np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *np.frombuffer(digest[:16], "<u4")])
    )


def _grid(center: _Vec, size: Sequence[int], spacing: Sequence[float], angle_deg: float) -> Geometry:
    a = np.deg2rad(angle_deg)
    direction = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    half = (np.asarray(size, dtype=np.float64) - 1.0) / 2.0 * np.asarray(spacing)
    origin = np.asarray(center, dtype=np.float64) - direction @ half
    return Geometry(
        size=tuple(size), spacing=tuple(spacing), origin=tuple(origin), direction=tuple(direction.ravel())
    )


def _taller(size: tuple[int, int, int], spacing: Sequence[float], extent_mm: float) -> tuple[int, int, int]:
    """``size`` with enough slices for a z extent (between first and last voxel centres) of ``extent_mm``."""
    nz = max(size[2], int(np.ceil(extent_mm / spacing[2])) + 1)
    return (size[0], size[1], nz)


def make_phantom(
    patient_id: str,
    *,
    seed: int = 0,
    config: SyntheticConfig | None = None,
    with_nodes: bool = False,
    node_model: NodeModel = "lateral",
    n_nodes: int | None = None,
    with_primary: bool = True,
) -> Phantom:
    """Make one synthetic PET/CT patient in memory.

    Parameters
    ----------
    patient_id
        Identifier; together with ``seed`` it fixes every random choice.
    seed
        Dataset seed.
    config
        Grids and intensities (default :class:`SyntheticConfig`).
    with_nodes
        Draw lymph nodes and label them 2.
    node_model
        With ``with_nodes``: ``"lateral"`` (the 2022 phantoms: 1–3 nodes beside the
        tumour) or ``"neck_levels"`` (2025/2026: 0–4 FDG-avid nodes at neck levels
        II–IV, lateral to and below the primary; see :data:`NODE_LEVELS`).
    n_nodes
        ``neck_levels`` only: this many nodes instead of a random number.
    with_primary
        ``False``: no primary tumour (label 1 absent; ``neck_levels`` then draws at
        least one node unless ``n_nodes`` says otherwise).

    Returns
    -------
    Phantom
        CT, PET and label images plus the ground-truth anatomy (tumour centre, box, …).
    """
    cfg = SyntheticConfig() if config is None else config
    rng = _rng(patient_id, seed)
    an = _sample_anatomy(
        rng, cfg, with_nodes=with_nodes, node_model=node_model, n_nodes=n_nodes, with_primary=with_primary
    )
    jitter = np.array([1.0, 1.0, 0.5]) * cfg.origin_jitter_mm  # less in z, so the box stays in view

    def angle() -> float:
        return float(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)) if cfg.rotation_deg > 0 else 0.0

    # CT: the vertex lies ~4 mm below the top slice; PET: a different, offset field of view
    ct_size, pet_size = cfg.ct_size, cfg.pet_size
    if with_nodes and node_model == "neck_levels" and an.nodes:  # reach below the lowest node
        lowest = max(float(b.center[2] + np.max(b.radii)) for b in an.nodes) + 20.0 + jitter[2]
        ct_size = _taller(ct_size, cfg.ct_spacing, lowest + 4.0)
        pet_size = _taller(pet_size, cfg.pet_spacing, lowest + 12.0)
    ct_extent_z = (ct_size[2] - 1) * cfg.ct_spacing[2]
    ct_center = an.to_world((0.0, 0.0, ct_extent_z / 2.0 - 4.0)) + rng.uniform(-jitter, jitter)
    ct_geom = _grid(ct_center, ct_size, cfg.ct_spacing, angle())
    pet_extent_z = (pet_size[2] - 1) * cfg.pet_spacing[2]
    pet_center = an.to_world((0.0, 0.0, pet_extent_z / 2.0 - 12.0)) + rng.uniform(-jitter, jitter)
    pet_geom = _grid(pet_center, pet_size, cfg.pet_spacing, angle())

    box_center = np.asarray(an.to_world((0.0, -3.0, 135.0))) + rng.uniform(-2.0, 2.0, 3)
    box_size = cfg.box_size_mm + rng.uniform(-cfg.box_jitter_mm, cfg.box_jitter_mm, 3)
    bbox = BBox.from_center(box_center.tolist(), box_size.tolist())

    ct, label = _make_ct(an, ct_geom, cfg, rng)
    pet = _make_pet(an, pet_geom, cfg, rng)
    return Phantom(
        patient_id=patient_id,
        ct=array_to_image(ct, ct_geom),
        pet=array_to_image(pet, pet_geom),
        label=array_to_image(label, ct_geom),
        bbox=bbox,
        tumour_center_mm=an.to_world(an.tumour_lobes[0].center),
        tumour_radius_mm=float(np.mean(an.tumour_lobes[0].radii)),
        node_centers_mm=tuple(an.to_world(b.center) for b in an.nodes if an.nodes_labelled),
        brain_center_mm=an.to_world(_BRAIN_C),
        has_primary=an.has_primary,
        node_radii_mm=tuple(
            (float(b.radii[0]), float(b.radii[1]), float(b.radii[2])) for b in an.nodes if an.nodes_labelled
        ),
    )


def synthetic_patient_ids(n_cases: int, edition: Layout | str = "2020") -> list[str]:
    """Patient ids of a synthetic dataset: real-looking, cycling through the edition's centres.

    ``CHGJ001, CHMR002, CHUM003, …`` (2020/nnU-Net), with CHUP in 2021, and
    ``CHUM-001, CHUP-002, …`` for 2022, 2025 and 2026 (the layout record's
    :attr:`~hecktorseg.io.SynthSpec.id_format`).
    """
    synth = layout_spec(edition).synth
    return [
        synth.id_format.format(centre=synth.centres[i % len(synth.centres)], number=i + 1)
        for i in range(n_cases)
    ]


def _yes_no(rng: np.random.Generator, p_yes: float, p_missing: float) -> str | None:
    missing, yes = rng.random() < p_missing, rng.random() < p_yes
    return None if missing else ("Yes" if yes else "No")


def clinical_row(
    phantom: Phantom, spec: LayoutSpec, *, seed: int = 0, n_nodes: int | None = None
) -> dict[str, ClinicalValue]:
    """Plausible clinical values of one phantom for its edition's table (``None``: missing).

    The values come from their own random stream (``patient_id``, ``seed``), so they
    never change the images. ``CenterID`` is the 1-based position of the id's centre
    in the edition's centre list and is never missing; ``T-stage`` follows the
    tumour's size (``T0`` without a primary), ``N-stage`` the number of nodes
    (``N0`` without). Tobacco, alcohol, performance and HPV status are missing for
    some patients, as in the real tables.
    """
    rng = _rng(f"{phantom.patient_id}#clinical", seed)
    synth = spec.synth
    centre = next((c for c in synth.centres if phantom.patient_id.startswith(c)), synth.centres[0])
    nodes = len(phantom.node_centers_mm) if n_nodes is None else n_nodes
    hpv = None if rng.random() < 0.3 else float(rng.random() < 0.6)
    radius = phantom.tumour_radius_mm
    t_stage = "T0" if not phantom.has_primary else ("T1" if radius < 11 else "T2" if radius < 13.5 else "T3")
    n_stage = ("N0", "N1", "N2", "N2", "N3")[min(nodes, 4)]
    relapse = float(rng.random() < 0.3)
    values: dict[str, ClinicalValue] = {
        "CenterID": float(synth.centres.index(centre) + 1),
        "Gender": "M" if rng.random() < 0.8 else "F",
        "Age": float(rng.integers(38, 85)),
        "Tobacco Consumption": _yes_no(rng, 0.6, 0.2),
        "Alcohol Consumption": _yes_no(rng, 0.5, 0.25),
        "Performance Status": None if rng.random() < 0.3 else float(rng.integers(0, 3)),
        "Treatment": str(rng.choice(["Radiotherapy", "Chemoradiotherapy", "Surgery + Radiotherapy"])),
        "HPV Status": hpv,
        "Relapse": relapse,
        "RFS": float(rng.integers(60, 900) if relapse else rng.integers(700, 2600)),
        "T-stage": t_stage,
        "N-stage": n_stage,
    }
    return {name: values.get(name) for name in synth.clinical_columns if name != "PatientID"}


def _cell(value: ClinicalValue) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _write_clinical_table(path: Path, columns: Sequence[str], rows: dict[str, ClinicalInfo]) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for pid in sorted(rows):
        writer.writerow([pid if name == "PatientID" else _cell(rows[pid].get(name)) for name in columns])
    atomic_write_text(path, out.getvalue())


def _write(image: sitk.Image, path: Path, *, compress: bool) -> None:
    """Write a NIfTI file atomically; ``.nii.gz`` with fast gzip (level 1) instead of ITK's slow default."""
    if not compress:
        write_image(image, path, compress=False)
        return
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".synth-") as tmp_dir:
        plain = Path(tmp_dir) / "image.nii"
        write_image(image, plain, compress=False)
        data = gzip.compress(plain.read_bytes(), compresslevel=1, mtime=0)
    atomic_write_bytes(path, data)


def _parse_layout(edition: Layout | str) -> Layout:
    try:
        return parse_layout(edition)
    except LayoutError as exc:
        raise ConfigError(f"unknown dataset edition {edition!r}", hint=exc.hint) from None


def write_synthetic_dataset(
    out_dir: PathLike,
    *,
    n_cases: int = 8,
    edition: Layout | str = "2020",
    seed: int = 0,
    config: SyntheticConfig | None = None,
    progress: ProgressCallback | None = None,
    force: bool = False,
) -> list[Case]:
    """Write a synthetic dataset in one of the HECKTOR layouts.

    What is written for each edition comes from its layout record
    (:attr:`hecktorseg.io.LayoutSpec.synth`).

    Parameters
    ----------
    out_dir
        Destination folder (created). It must be empty unless ``force``.
    n_cases
        Number of patients.
    edition
        ``"2020"`` (nested folders + ``bbox.csv``), ``"2021"`` (flat +
        ``hecktor2021_bbox_training.csv`` with exact 144 mm boxes), ``"2022"``
        (``imagesTr``/``labelsTr``, labels {0, 1, 2} with lymph nodes, no box
        table), ``"2025"`` (``<PID>/<PID>__CT|__PT|.nii.gz`` with 0–4 lymph nodes at
        neck levels II–IV, ``HECKTOR_2025_Training_Task_1.csv``), ``"2026"`` (the same
        folders, ``HECKTOR_2026_Training_Task.csv``) or ``"nnunet"`` (nnU-Net raw:
        PET resampled onto the CT grid, ``dataset.json``). In 2025/2026 the second
        patient has no lymph node and the third no primary tumour (nodes only).
    seed
        Dataset seed: the same seed gives the same files.
    config
        Phantom configuration (default :class:`SyntheticConfig`).
    progress
        Called as ``progress(done, total, patient_id)`` after each case.
    force
        Allow writing into a non-empty folder (existing files of the same name are replaced).

    Returns
    -------
    list of Case
        The cases written, as :func:`hecktorseg.io.discover_cases` finds them.
    """
    layout = _parse_layout(edition)
    spec = layout_spec(layout)
    synth = spec.synth
    cfg = SyntheticConfig() if config is None else config
    if n_cases < 1:
        raise ConfigError(f"n_cases must be at least 1, got {n_cases}")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise DataError("output path exists and is not a folder", path=root, hint="choose another folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise DataError(
            "output folder is not empty",
            path=root,
            hint="choose an empty folder or pass force=True (--force) to write into it",
        )
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".nii.gz" if cfg.compress else ".nii"
    cases: list[Case] = []
    boxes: dict[str, BBox] = {}
    clinical: dict[str, ClinicalInfo] = {}
    ids = synthetic_patient_ids(n_cases, layout)
    for i, pid in enumerate(ids):
        model: NodeModel = "lateral" if synth.nodes == "none" else synth.nodes
        phantom = make_phantom(
            pid,
            seed=seed,
            config=cfg,
            with_nodes=synth.nodes != "none",
            node_model=model,
            n_nodes=0 if i == synth.no_nodes_index else None,
            with_primary=i != synth.no_primary_index,
        )
        ct_path, pet_path, label_path = layout_paths(root, pid, layout, suffix=suffix)
        pet = phantom.pet
        if synth.pet_on_ct_grid:  # nnU-Net wants every channel on one grid
            pet = sitk.Resample(pet, phantom.ct, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        for image, path in ((phantom.ct, ct_path), (pet, pet_path), (phantom.label, label_path)):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(image, path, compress=cfg.compress)
        bbox: BBox | None = None
        if synth.bbox_table is not None:
            exact = BBox.from_center(phantom.bbox.center.tolist(), (cfg.box_size_mm,) * 3)
            bbox = exact if synth.exact_boxes else phantom.bbox
            boxes[pid] = bbox
        info = ClinicalInfo()
        if synth.clinical_table is not None:
            info = ClinicalInfo(clinical_row(phantom, spec, seed=seed))
            clinical[pid] = info
        cases.append(
            Case(
                patient_id=pid,
                centre=centre_of(pid, info),
                ct_path=ct_path,
                pet_path=pet_path,
                label_path=label_path,
                bbox=bbox,
                layout=layout,
                clinical=info,
            )
        )
        logger.debug("wrote synthetic case %s", pid)
        if progress is not None:
            progress(i + 1, n_cases, pid)
    if synth.bbox_table is not None:
        write_bbox_table(root / synth.bbox_table, boxes)
    if synth.clinical_table is not None:
        _write_clinical_table(root / synth.clinical_table, synth.clinical_columns, clinical)
    if synth.dataset_json:
        dataset = {
            "name": "HecktorsegSynthetic",
            "description": f"hecktorseg synthetic PET/CT phantoms (seed {seed})",
            "channel_names": {"0": "CT", "1": "PT"},
            "labels": {name: value for value, name in enumerate(spec.label_names)},
            "numTraining": n_cases,
            "file_ending": suffix,
        }
        atomic_write_text(root / "dataset.json", json.dumps(dataset, indent=2) + "\n")
    return sorted(cases, key=lambda c: c.patient_id)
