"""Synthetic phantoms: rendering the sampled anatomy into CT, PET and label images on their own grids (:func:`make_phantom`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from hecktorseg.data._synth_anatomy import (
    _BRAIN_C,
    _BRAIN_R,
    _Anatomy,
    _Blob,
    _body_q,
    _q,
    _q2,
    _sample_anatomy,
    _tumour_f,
    _Vec,
)
from hecktorseg.data._synth_config import Phantom, SyntheticConfig
from hecktorseg.io import (
    BBox,
    Geometry,
    array_to_image,
)
from hecktorseg.io.layout_specs import NodeModel
from hecktorseg.typing import FloatArray


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
        II–IV, lateral to and below the primary; see :data:`~hecktorseg.data.synthetic.NODE_LEVELS`).
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
