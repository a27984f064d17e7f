"""Helpers the DICOM tests import by name: dciodvfy's error lines and Dice."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

DCIODVFY = shutil.which("dciodvfy")


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dciodvfy (dicom3tools) prints for a file; skips the test without it."""
    if DCIODVFY is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(a, b).sum()) / total
