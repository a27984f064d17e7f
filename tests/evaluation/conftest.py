"""Fixtures for the evaluation tests: builders of small label images on chosen grids."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pytest
import SimpleITK as sitk


def _make_image(
    array_zyx: npt.ArrayLike,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    direction: Sequence[float] | None = None,
) -> sitk.Image:
    image = sitk.GetImageFromArray(np.asarray(array_zyx))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in origin])
    if direction is not None:
        image.SetDirection([float(d) for d in direction])
    return image


def _cube(
    shape: Sequence[int], lower: Sequence[int], upper: Sequence[int], value: int = 1
) -> npt.NDArray[np.uint8]:
    out = np.zeros(tuple(shape), dtype=np.uint8)
    out[tuple(slice(lo, hi) for lo, hi in zip(lower, upper, strict=True))] = value
    return out


@pytest.fixture
def make_image() -> Callable[..., sitk.Image]:
    """``make_image(array_zyx, spacing_xyz, origin_xyz, direction)`` → SimpleITK image."""
    return _make_image


@pytest.fixture
def cube() -> Callable[..., npt.NDArray[np.uint8]]:
    """``cube(shape, lower, upper, value=1)``: ``value`` in the half-open box (array order)."""
    return _cube
