"""``.mha`` and ``.nrrd`` get the checks NIfTI gets: NaN, dimensions, label values, truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.io import read_image

SUFFIXES = [".mha", ".nrrd"]


def _write(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((2.0, 2.0, 3.0))
    image.SetOrigin((-5.0, 1.0, 2.0))
    sitk.WriteImage(image, str(path), compress)
    return path


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_good_file_keeps_values_and_geometry(tmp_path: Path, suffix: str) -> None:
    array = np.random.default_rng(0).normal(size=(6, 7, 8)).astype(np.float32)
    image = read_image(_write(tmp_path / f"ct{suffix}", array), kind="ct")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)
    assert image.GetSpacing() == (2.0, 2.0, 3.0) and image.GetOrigin() == (-5.0, 1.0, 2.0)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_nan_is_an_error_naming_the_file(tmp_path: Path, suffix: str) -> None:
    array = np.ones((6, 7, 8), dtype=np.float32)
    array[5, 6, 7] = np.nan
    path = _write(tmp_path / f"pet{suffix}", array)
    with pytest.raises(DataError, match=rf"pet\{suffix}: image holds NaN"):
        read_image(path, kind="pet")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_two_d_image_is_an_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"slice{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((7, 8), np.float32)), str(path))
    with pytest.raises(DataError, match=r"2-D"):
        read_image(path, kind="ct")
    flat = _write(tmp_path / f"flat{suffix}", np.zeros((1, 7, 8), np.float32))
    with pytest.raises(DataError, match="at least 2 voxels"):
        read_image(flat, kind="ct")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_label_value_outside_the_edition(tmp_path: Path, suffix: str) -> None:
    array = np.zeros((6, 7, 8), np.uint8)
    array[2, 3, 4] = 3
    path = _write(tmp_path / f"CHUM-001{suffix}", array)
    with pytest.raises(
        DataError, match=r"CHUM-001\S*: label values \[3\] are outside the allowed set \[0, 1, 2\]"
    ):
        read_image(path, kind="label", allowed_labels={0, 1, 2})


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("compress", [False, True])
def test_truncated_file_is_an_error(tmp_path: Path, suffix: str, compress: bool) -> None:
    array = np.random.default_rng(1).normal(size=(10, 12, 14)).astype(np.float32)
    raw = _write(tmp_path / f"full{suffix}", array, compress=compress).read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(DataError, match=r"cut"):
        read_image(cut, kind="ct")


def _meta_field(path: Path, key: str) -> str:
    """One field of a MetaImage header, read here independently of the library."""
    for line in path.read_bytes().split(b"\n"):
        name, _, value = line.decode("latin-1").partition(" = ")
        if name == key:
            return value.strip()
        if name == "ElementDataFile":
            break
    raise KeyError(key)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "compressed"])
def test_a_truncated_mha_names_both_sizes(tmp_path: Path, compress: bool) -> None:
    """ITK's own error for it was an unrelated errno ("No such file or directory")."""
    from hecktorseg.io import check_image_file

    array = np.random.default_rng(2).normal(size=(10, 12, 14)).astype(np.float32)
    full = _write(tmp_path / "ct.mha", array, compress=compress)
    announced = int(_meta_field(full, "CompressedDataSize")) if compress else array.nbytes
    raw = full.read_bytes()
    full.write_bytes(raw[:-100])
    held = announced - 100
    message = (
        rf"ct\.mha: truncated image: the header announces {announced} bytes of voxels, the file holds {held}"
    )
    with pytest.raises(DataError, match=message):
        read_image(full, kind="ct")
    with pytest.raises(DataError, match="truncated image"):
        check_image_file(full)  # an earlier output cut short is not "done"


def test_an_mhd_with_a_short_or_missing_raw_file(tmp_path: Path) -> None:
    array = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    header = _write(tmp_path / "ct.mhd", array)
    data = tmp_path / _meta_field(header, "ElementDataFile")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_image(header, kind="ct")), array)
    data.write_bytes(data.read_bytes()[:-10])
    with pytest.raises(
        DataError,
        match=rf"{data.name}: truncated image: .* {array.nbytes} bytes .* holds {array.nbytes - 10}",
    ):
        read_image(header, kind="ct")
    data.unlink()
    with pytest.raises(
        DataError, match=rf"ct\.mhd: the header names the data file {data.name}, which does not exist"
    ):
        read_image(header, kind="ct")
