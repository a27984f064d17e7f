"""Spacing-aware metrics against hand-computed values and a brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.distance import cdist

from hecktorseg.errors import GeometryError
from hecktorseg.evaluation import (
    assd,
    dice,
    hd95,
    precision,
    recall,
    spacing_zyx,
    surface_dice,
    surface_distances,
    volume,
)


def _box(
    shape: tuple[int, int, int], lower: tuple[int, int, int], upper: tuple[int, int, int]
) -> npt.NDArray[np.uint8]:
    out = np.zeros(shape, dtype=np.uint8)
    out[lower[0] : upper[0], lower[1] : upper[1], lower[2] : upper[2]] = 1
    return out


def _ball(
    shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float
) -> npt.NDArray[np.bool_]:
    grid = np.indices(shape, dtype=np.float64)
    return sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= radius**2  # type: ignore[no-any-return]


def _reference_surface_points(
    mask: npt.NDArray[np.bool_], spacing: tuple[float, ...]
) -> npt.NDArray[np.float64]:
    """Surface voxels (any 6-neighbour outside, array border = outside), as mm coordinates."""
    padded = np.pad(mask, 1)
    inner = np.ones_like(mask)
    for axis in range(3):
        for shift in (-1, 1):
            inner &= np.roll(padded, shift, axis=axis)[1:-1, 1:-1, 1:-1]
    surface = mask & ~inner
    return np.argwhere(surface) * np.asarray(spacing)


def _reference_distances(
    p: npt.NDArray[np.bool_], g: npt.NDArray[np.bool_], spacing: tuple[float, ...]
) -> npt.NDArray[np.float64]:
    sp, sg = _reference_surface_points(p, spacing), _reference_surface_points(g, spacing)
    d = cdist(sp, sg)
    return np.concatenate([d.min(axis=1), d.min(axis=0)])


# ----------------------------------------------------------------------------------------- overlap
def test_dice_precision_recall_of_known_overlap() -> None:
    a = _box((10, 10, 10), (2, 2, 2), (6, 6, 6))  # 64 voxels
    b = _box((10, 10, 10), (2, 2, 3), (6, 6, 7))  # shifted by 1 along x: overlap 48
    assert dice(b, a) == pytest.approx(2 * 48 / 128)
    c = _box((10, 10, 10), (2, 2, 2), (6, 6, 4))  # half of a: 32 voxels, all inside a
    assert dice(c, a) == pytest.approx(64 / 96)
    assert precision(c, a) == pytest.approx(1.0)
    assert recall(c, a) == pytest.approx(0.5)
    assert precision(a, c) == pytest.approx(0.5)


def test_overlap_empty_conventions() -> None:
    empty = np.zeros((4, 4, 4))
    full = np.ones((4, 4, 4))
    assert dice(empty, empty) == 1.0
    assert dice(empty, full) == 0.0
    assert precision(empty, full) == 0.0
    assert recall(empty, full) == 0.0
    assert recall(full, empty) == 0.0
    assert precision(empty, empty) == recall(empty, empty) == 1.0


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(GeometryError, match="shape"):
        dice(np.zeros((3, 3, 3)), np.zeros((3, 3, 4)))


def test_volume_in_mm3() -> None:
    assert volume(_box((5, 5, 5), (0, 0, 0), (2, 3, 4)), (3.0, 0.5, 2.0)) == pytest.approx(24 * 3.0)


def test_spacing_order_helper() -> None:
    assert spacing_zyx((0.9, 0.8, 3.0)) == (3.0, 0.8, 0.9)


# ----------------------------------------------------------------------------------------- surfaces
@pytest.mark.parametrize(
    ("axis", "k"),
    [(0, 1), (0, 2), (1, 3), (2, 2)],
)
def test_hd95_of_offset_cubes_on_anisotropic_grid(axis: int, k: int) -> None:
    spacing = (3.0, 0.8, 1.3)  # (z, y, x)
    shape = (20, 20, 20)
    lower = [4, 4, 4]
    a = _box(shape, (4, 4, 4), (12, 12, 12))
    lower[axis] += k
    upper = [12, 12, 12]
    upper[axis] += k
    b = _box(shape, tuple(lower), tuple(upper))  # type: ignore[arg-type]
    assert hd95(b, a, spacing) == pytest.approx(k * spacing[axis])
    assert hd95(a, b, spacing) == pytest.approx(k * spacing[axis])


def test_sphere_against_itself_is_perfect() -> None:
    s = _ball((24, 24, 24), (12, 11, 12.5), 7)
    spacing = (2.0, 0.7, 0.7)
    assert hd95(s, s, spacing) == 0.0
    assert assd(s, s, spacing) == 0.0
    assert surface_dice(s, s, spacing, tolerance_mm=0.0) == 1.0
    assert dice(s, s) == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surface_metrics_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (12, 14, 16)
    spacing = (2.5, 0.9, 1.1)
    p = _ball(shape, tuple(rng.uniform(4, 8, 3)), rng.uniform(2.5, 4.5))  # type: ignore[arg-type]
    g = _ball(shape, tuple(rng.uniform(4, 8, 3)), rng.uniform(2.5, 4.5))  # type: ignore[arg-type]
    g[0, :3, :3] = True  # a piece touching the array border: border voxels count as surface
    ref = _reference_distances(p, g, spacing)
    assert np.sort(surface_distances(p, g, spacing).all) == pytest.approx(np.sort(ref))
    assert hd95(p, g, spacing) == pytest.approx(np.percentile(ref, 95))
    assert assd(p, g, spacing) == pytest.approx(ref.mean())
    tol = 2.0
    assert surface_dice(p, g, spacing, tolerance_mm=tol) == pytest.approx(np.mean(ref <= tol))


def test_surface_metrics_empty_conventions() -> None:
    empty = np.zeros((6, 6, 6), dtype=bool)
    blob = _box((6, 6, 6), (1, 1, 1), (4, 4, 4))
    assert hd95(empty, empty) == 0.0
    assert assd(empty, empty) == 0.0
    assert surface_dice(empty, empty) == 1.0
    assert math.isinf(hd95(empty, blob))
    assert math.isinf(assd(blob, empty))
    assert surface_dice(blob, empty) == 0.0
    with pytest.raises(ValueError, match="non-empty"):
        surface_distances(empty, blob)


def test_surface_dice_tolerance() -> None:
    spacing = (2.0, 1.0, 1.0)
    a = _box((16, 16, 16), (4, 4, 4), (10, 10, 10))
    b = _box((16, 16, 16), (5, 4, 4), (11, 10, 10))  # one slice (2 mm) shift along z
    assert surface_dice(a, b, spacing, tolerance_mm=2.0) == 1.0
    assert surface_dice(a, b, spacing, tolerance_mm=1.9) < 1.0


def test_bad_spacing_is_rejected() -> None:
    a = _box((4, 4, 4), (1, 1, 1), (3, 3, 3))
    with pytest.raises(GeometryError):
        hd95(a, a, (1.0, 1.0))
    with pytest.raises(GeometryError):
        hd95(a, a, (1.0, -1.0, 1.0))
