"""Fixtures for the io tests: tiny synthetic datasets and an independent NIfTI header reader."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import pytest

from hecktorseg.data.synthetic import SyntheticConfig, write_synthetic_dataset

TINY = SyntheticConfig.tiny()

_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4"}


@attrs.frozen
class RawNifti:
    """A NIfTI-1 file decoded with NumPy only (no SimpleITK, no hecktorseg code)."""

    shape_xyz: tuple[int, int, int]
    spacing: tuple[float, float, float]
    affine_lps: npt.NDArray[np.float64]  # 4x4: (i, j, k, 1) -> LPS world mm
    data_zyx: npt.NDArray[np.generic]

    def world_lps(self, ijk: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """World (LPS, as ITK) coordinates of voxel indices (..., 3) in (i, j, k) = (x, y, z) order."""
        homog = np.concatenate([ijk, np.ones((*ijk.shape[:-1], 1))], axis=-1)
        out: npt.NDArray[np.float64] = homog @ self.affine_lps.T
        return out[..., :3]


def read_raw_nifti(path: Path) -> RawNifti:
    """Parse a (gzipped) NIfTI-1 file by hand: header numbers, sform affine and voxel block."""
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    assert int(np.frombuffer(raw[:4], "<i4")[0]) == 348, "not a little-endian NIfTI-1 file"
    dim = np.frombuffer(raw[40:56], "<i2")
    assert dim[0] == 3
    datatype = int(np.frombuffer(raw[70:72], "<i2")[0])
    pixdim = np.frombuffer(raw[76:108], "<f4").astype(np.float64)
    vox_offset = int(np.frombuffer(raw[108:112], "<f4")[0])
    sform_code = int(np.frombuffer(raw[254:256], "<i2")[0])
    assert sform_code > 0, "expected an sform"
    srow = np.frombuffer(raw[280:328], "<f4").astype(np.float64).reshape(3, 4)
    ras = np.vstack([srow, [0.0, 0.0, 0.0, 1.0]])
    ras_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    nx, ny, nz = (int(v) for v in dim[1:4])
    count = nx * ny * nz
    data = np.frombuffer(raw, dtype="<" + _NIFTI_DTYPES[datatype], count=count, offset=vox_offset)
    return RawNifti(
        shape_xyz=(nx, ny, nz),
        spacing=(float(pixdim[1]), float(pixdim[2]), float(pixdim[3])),
        affine_lps=ras_to_lps @ ras,
        data_zyx=data.reshape(nz, ny, nx),
    )


@pytest.fixture
def raw_nifti() -> Callable[[Path], RawNifti]:
    """The independent NIfTI reader."""
    return read_raw_nifti


@pytest.fixture
def make_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_dataset(edition, n_cases=2, seed=0)`` writes a tiny synthetic dataset."""
    counter = iter(range(1000))

    def make(edition: str, n_cases: int = 2, seed: int = 0, **config: Any) -> Path:
        root = tmp_path / f"{edition}_{next(counter)}"
        cfg = attrs.evolve(TINY, **config) if config else TINY
        write_synthetic_dataset(root, n_cases=n_cases, edition=edition, seed=seed, config=cfg)
        return root

    return make
