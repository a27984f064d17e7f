"""Type aliases shared across hecktorseg."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = ["FloatArray", "PathLike", "ProgressCallback", "Triplet", "TripletInt"]

PathLike: TypeAlias = str | os.PathLike[str]
"""Anything :class:`pathlib.Path` accepts."""

Triplet: TypeAlias = tuple[float, float, float]
"""Three floats in SimpleITK (x, y, z) order."""

TripletInt: TypeAlias = tuple[int, int, int]
"""Three integers in SimpleITK (x, y, z) order."""

FloatArray: TypeAlias = npt.NDArray[np.floating]
"""A NumPy array of floating-point values."""

ProgressCallback: TypeAlias = Callable[[int, int, str], None]
"""``callback(completed, total, message)``: how long-running library functions report progress.

Library code never draws progress bars itself; the CLI passes a callback that
updates a ``rich`` progress bar, and scripts may pass their own (or ``None``).
"""
