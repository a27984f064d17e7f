"""The fast reader catches what hecktorseg.io catches: truncation, corruption, NaN, bad labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.io import read_image, read_images
from hecktorseg.io._reading import scan_nifti, set_io_threads


def _write(path: Path, array: np.ndarray) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.5, 1.5, 3.0))
    image.SetOrigin((-10.0, 5.0, 7.0))
    image.SetDirection((0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    sitk.WriteImage(image, str(path), path.name.endswith(".gz"))
    return path


@pytest.fixture(params=[None, 1], ids=["threads", "sequential"])
def io_threads(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    set_io_threads(request.param)
    yield request.param
    set_io_threads(None)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_good_files_read_like_io(tmp_path: Path, suffix: str, dtype: type, io_threads: int | None) -> None:
    rng = np.random.default_rng(0)
    array = (rng.normal(0, 100, size=(20, 30, 40))).astype(dtype)
    path = _write(tmp_path / f"img{suffix}", array)
    scan_nifti(path)
    (ours,) = read_images([(path, "ct", None)])
    ref = read_image(path, kind="ct")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref))
    assert ours.GetOrigin() == ref.GetOrigin() and ours.GetSpacing() == ref.GetSpacing()
    assert ours.GetDirection() == ref.GetDirection() and ours.GetPixelID() == sitk.sitkFloat32
    itk = sitk.ReadImage(str(path))
    assert itk.GetDirection() == ours.GetDirection()
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(itk).astype(np.float32), sitk.GetArrayFromImage(ours)
    )


def test_rescaled_nifti_takes_the_itk_path(tmp_path: Path, io_threads: int | None) -> None:
    import gzip
    import struct

    path = _write(tmp_path / "i16.nii.gz", np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
    raw = bytearray(gzip.decompress(path.read_bytes()))
    struct.pack_into("<f", raw, 112, 2.0)  # scl_slope
    struct.pack_into("<f", raw, 116, -1024.0)  # scl_inter
    scaled = tmp_path / "scaled.nii"
    scaled.write_bytes(bytes(raw))
    (ours,) = read_images([(scaled, "ct", None)])
    expected = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6) * 2 - 1024
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), expected)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(scaled, kind="ct")), expected)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_truncated_and_corrupt_files(tmp_path: Path, suffix: str) -> None:
    path = _write(
        tmp_path / f"img{suffix}", np.random.default_rng(1).normal(size=(20, 30, 40)).astype(np.float32)
    )
    raw = path.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(DataError, match="cut"):
        scan_nifti(cut)
    with pytest.raises(DataError):
        read_images([(cut, "ct", None)])
    if suffix == ".nii.gz":
        bad = tmp_path / f"bad{suffix}"
        bad.write_bytes(raw[:100] + bytes(200) + raw[300:])
        with pytest.raises(DataError):
            scan_nifti(bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_is_found(tmp_path: Path, dtype: type, io_threads: int | None) -> None:
    array = np.ones((20, 30, 40), dtype=dtype)
    array[19, 29, 39] = np.nan  # the very last voxel: chunk boundaries must not hide it
    path = _write(tmp_path / "nan.nii.gz", array)
    with pytest.raises(DataError, match="NaN"):
        read_images([(path, "pet", None)])


def test_missing_file_and_label_values(tmp_path: Path, io_threads: int | None) -> None:
    with pytest.raises(DataError, match="not found"):
        read_images([(tmp_path / "nope.nii.gz", "ct", None)])
    label = _write(tmp_path / "lab.nii.gz", np.full((4, 5, 6), 3, dtype=np.uint8))
    with pytest.raises(DataError, match="outside the allowed"):
        read_images([(label, "label", {0, 1})])
    (ok,) = read_images([(label, "label", None)])
    assert ok.GetPixelID() == sitk.sitkUInt8
    # other formats go through hecktorseg.io
    mha = tmp_path / "img.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.float32)), str(mha))
    (img,) = read_images([(mha, "ct", None)])
    assert img.GetSize() == (6, 5, 4)
