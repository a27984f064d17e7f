"""Fixtures for the inference tests: tiny PET/CT phantoms on chosen grids and toy models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from torch import Tensor, nn

from hecktorseg.io import BBox, Case, Geometry, write_bbox_table, write_image
from hecktorseg.preprocessing import PreprocessConfig

# a sphere of tumour (HU 300 on CT, SUV 8 on PET) of radius 12 mm around this world point
CENTRE = np.array([5.0, -12.0, 40.0])
RADIUS = 12.0
BOX = BBox.from_center(CENTRE, (64.0, 64.0, 64.0))
SMALL_CONFIG = PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(32, 32, 32))


def phantom(geometry: Geometry, inside: float, outside: float) -> sitk.Image:
    """An image on ``geometry`` with ``inside`` within the world sphere and ``outside`` elsewhere."""
    nx, ny, nz = geometry.size
    idx = np.stack(np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij"), axis=-1)
    world = geometry.index_to_world(idx[..., ::-1].astype(np.float64))  # (x, y, z) indices
    dist = np.linalg.norm(world - CENTRE, axis=-1)
    array = np.where(dist <= RADIUS, inside, outside).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    return geometry.apply_to(image)


def rotation_z(degrees: float) -> tuple[float, ...]:
    """Row-major direction matrix of a rotation about z."""
    a = np.deg2rad(degrees)
    return (np.cos(a), -np.sin(a), 0.0, np.sin(a), np.cos(a), 0.0, 0.0, 0.0, 1.0)


def ct_geometry(
    spacing: Sequence[float], origin_shift: Sequence[float] = (0, 0, 0), direction=None
) -> Geometry:  # type: ignore[no-untyped-def]
    """A CT grid covering the box (plus margin) with the given spacing, origin shift and direction."""
    extent = np.array([100.0, 100.0, 100.0])
    size = np.ceil(extent / np.asarray(spacing)).astype(int)
    d = np.eye(3) if direction is None else np.asarray(direction, dtype=np.float64).reshape(3, 3)
    # centre the grid on CENTRE: origin = centre - D @ (spacing * (size-1)/2)
    half = np.asarray(spacing) * (size - 1) / 2.0
    origin = CENTRE - d @ half + np.asarray(origin_shift, dtype=np.float64)
    return Geometry(
        size=tuple(size), spacing=tuple(spacing), origin=tuple(origin), direction=tuple(d.ravel())
    )


PET_GEOMETRY = Geometry(
    size=(30, 30, 30), spacing=(4.0, 4.0, 3.5), origin=tuple(CENTRE - [58.0, 58.0, 50.75])
)


def write_case(root: Path, pid: str, geometry: Geometry) -> Case:
    """Write ``<root>/<pid>_ct.nii.gz`` and ``_pt.nii.gz`` (2021 flat layout) and return the case."""
    ct = phantom(geometry, 300.0, -1000.0)
    pet = phantom(PET_GEOMETRY, 8.0, 1.0)
    write_image(ct, root / f"{pid}_ct.nii.gz")
    write_image(pet, root / f"{pid}_pt.nii.gz")
    return Case(pid, pid[:4], root / f"{pid}_ct.nii.gz", root / f"{pid}_pt.nii.gz", bbox=BOX)


class CTThreshold(nn.Module):
    """Toy 'segmenter': logit = 50 × normalised CT, i.e. foreground where HU > 0 (exact to check)."""

    def __init__(self, n_classes: int = 1) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(50.0))
        self.n_classes = n_classes

    def forward(self, x: Tensor) -> Tensor:
        fg = self.scale * x[:, :1]
        if self.n_classes == 1:
            return fg
        rest = [torch.zeros_like(fg), fg] + [torch.full_like(fg, -50.0)] * (self.n_classes - 2)
        return torch.cat(rest, dim=1)


class Pointwise(nn.Module):
    """A 1×1×1 convolution (random weights): its output at a voxel depends only on that voxel."""

    def __init__(self, n_classes: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, n_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.conv(x)
        return out


@pytest.fixture
def dataset_2021(tmp_path: Path) -> tuple[Path, Path, list[Case]]:
    """A flat (2021-style) dataset of three cases on different CT grids, and its box table."""
    root = tmp_path / "raw"
    geometries = {
        "CHGJ001": ct_geometry((0.98, 0.98, 3.27)),
        "CHMR002": ct_geometry((1.37, 1.37, 2.0), origin_shift=(3.3, -2.1, 1.7)),
        "CHUM003": ct_geometry((1.2, 1.1, 2.5), direction=rotation_z(25.0)),
    }
    cases = [write_case(root, pid, geo) for pid, geo in geometries.items()]
    table = tmp_path / "boxes.csv"
    write_bbox_table(table, {c.patient_id: BOX for c in cases})
    return root, table, cases


@pytest.fixture
def make_ct_geometry() -> Callable[..., Geometry]:
    """``make_ct_geometry(spacing, origin_shift=(0,0,0), direction=None)``."""
    return ct_geometry


@pytest.fixture
def toys() -> SimpleNamespace:
    """The helpers of this module (tests cannot import a conftest reliably)."""
    return SimpleNamespace(
        CENTRE=CENTRE,
        RADIUS=RADIUS,
        BOX=BOX,
        SMALL_CONFIG=SMALL_CONFIG,
        PET_GEOMETRY=PET_GEOMETRY,
        phantom=phantom,
        rotation_z=rotation_z,
        ct_geometry=ct_geometry,
        write_case=write_case,
        CTThreshold=CTThreshold,
        Pointwise=Pointwise,
    )
