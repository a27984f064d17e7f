"""Geometry, boxes, atomic writes and image reading/validation (the io core)."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.io import (
    BBox,
    Geometry,
    array_to_image,
    atomic_path,
    atomic_write_text,
    read_image,
    write_image,
)


def _rotation_direction() -> tuple[float, ...]:
    # a permuted and flipped direction matrix
    m = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    return tuple(m.ravel())


@pytest.mark.parametrize("direction", [tuple(np.eye(3).ravel()), _rotation_direction()])
def test_geometry_matches_simpleitk_index_to_world(direction: tuple[float, ...]) -> None:
    image = sitk.Image([5, 6, 7], sitk.sitkFloat32)
    image.SetSpacing((0.9, 1.3, 3.2))
    image.SetOrigin((-10.0, 4.0, 100.0))
    image.SetDirection(direction)
    geom = Geometry.from_image(image)
    for idx in itertools.product((0, 4), (0, 5), (0, 6)):
        expected = image.TransformContinuousIndexToPhysicalPoint([float(i) for i in idx])
        np.testing.assert_allclose(geom.index_to_world(idx), expected, atol=1e-9)
        np.testing.assert_allclose(geom.world_to_index(expected), idx, atol=1e-9)


def test_geometry_bounds_and_dict_round_trip() -> None:
    geom = Geometry(size=(10, 20, 5), spacing=(1.0, 2.0, 3.0), origin=(0.0, 0.0, 0.0))
    lo, hi = geom.world_bounds()
    np.testing.assert_allclose(lo, [-0.5, -1.0, -1.5])
    np.testing.assert_allclose(hi, [9.5, 39.0, 13.5])
    assert Geometry.from_dict(geom.to_dict()) == geom
    assert geom.shape_zyx == (5, 20, 10)
    assert geom.voxel_volume == pytest.approx(6.0)


def test_geometry_rejects_bad_values() -> None:
    with pytest.raises(GeometryError, match="spacing"):
        Geometry(size=(2, 2, 2), spacing=(1.0, 0.0, 1.0))
    with pytest.raises(GeometryError, match="9 values"):
        Geometry(size=(2, 2, 2), spacing=(1.0, 1.0, 1.0), direction=(1.0, 0.0))


def test_bbox_validation_and_helpers() -> None:
    box = BBox.from_center((0.0, 10.0, -5.0), (144.0, 144.0, 144.0))
    np.testing.assert_allclose(box.lower, [-72.0, -62.0, -77.0])
    np.testing.assert_allclose(box.size, [144.0, 144.0, 144.0])
    assert BBox.from_dict(box.to_dict()) == box
    with pytest.raises(GeometryError, match="y1"):
        BBox(0, 1, 5, 5, 0, 1)
    with pytest.raises(GeometryError, match="finite"):
        BBox(0, float("nan"), 0, 1, 0, 1)


def test_atomic_path_keeps_destination_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    atomic_write_text(dest, "first")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("killed")
    assert dest.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_write_and_read_keep_geometry(tmp_path: Path) -> None:
    geom = Geometry(size=(8, 9, 10), spacing=(0.98, 0.98, 3.27), origin=(-50.0, 20.0, -300.0))
    array = np.random.default_rng(0).normal(size=geom.shape_zyx).astype(np.float32)
    path = write_image(array_to_image(array, geom), tmp_path / "a.nii.gz")
    # independent check: parse the NIfTI-1 header ourselves
    header = gzip.decompress(path.read_bytes())[:348]
    dims = np.frombuffer(header[40:56], dtype="<i2")
    pixdim = np.frombuffer(header[76:108], dtype="<f4")
    assert tuple(dims[1:4]) == (8, 9, 10)
    np.testing.assert_allclose(pixdim[1:4], (0.98, 0.98, 3.27), rtol=1e-6)
    image = read_image(path, kind="ct")
    assert Geometry.from_image(image).is_close(geom)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)


def test_read_image_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found") as info:
        read_image(tmp_path / "missing.nii.gz")
    assert "missing.nii.gz" in str(info.value)

    good = write_image(
        array_to_image(np.zeros((4, 4, 4), np.float32), Geometry((4, 4, 4), (1, 1, 1))), tmp_path / "g.nii.gz"
    )
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(good.read_bytes()[:60])
    with pytest.raises(DataError, match="cannot read") as info:
        read_image(truncated)
    assert "truncated.nii.gz" in str(info.value)

    flat = sitk.Image([16, 16], sitk.sitkFloat32)
    sitk.WriteImage(flat, str(tmp_path / "slice.nii.gz"))
    with pytest.raises(DataError, match="3-D"):
        read_image(tmp_path / "slice.nii.gz")

    nan = np.zeros((4, 4, 4), np.float32)
    nan[1, 1, 1] = np.nan
    write_image(array_to_image(nan, Geometry((4, 4, 4), (1, 1, 1))), tmp_path / "nan.nii.gz")
    with pytest.raises(DataError, match="NaN"):
        read_image(tmp_path / "nan.nii.gz", kind="pet")

    labels = np.zeros((4, 4, 4), np.uint8)
    labels[0, 0, 0] = 3
    write_image(array_to_image(labels, Geometry((4, 4, 4), (1, 1, 1))), tmp_path / "lab.nii.gz")
    with pytest.raises(DataError, match=r"label values \[3\]"):
        read_image(tmp_path / "lab.nii.gz", kind="label", allowed_labels={0, 1})
    assert read_image(tmp_path / "lab.nii.gz", kind="label").GetPixelID() == sitk.sitkUInt8
