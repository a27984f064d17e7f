"""Synthetic phantoms: anatomy and lesion placement (skull, brain, tumour lobes, lymph nodes at neck levels) in anatomy coordinates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import attrs
import numpy as np

from hecktorseg.data._synth_config import (
    _SKULL_BASE_DEPTH_MM,
    NODE_COUNT_PROBABILITIES,
    NODE_LEVELS,
    SyntheticConfig,
)
from hecktorseg.io.layout_specs import NodeModel
from hecktorseg.typing import FloatArray, Triplet

_Vec: TypeAlias = "Sequence[float] | FloatArray"


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
