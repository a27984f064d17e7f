"""Reading and writing medical images with their geometry intact."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.io.atomic import atomic_path
from hecktorseg.io.geometry import Geometry
from hecktorseg.typing import PathLike

__all__ = [
    "ImageKind",
    "array_to_image",
    "image_to_array",
    "read_image_itk",
    "validate_image",
    "write_image",
]

ImageKind = Literal["ct", "pet", "label", "probability", "image"]
"""What an image holds; decides which checks :func:`hecktorseg.io.read_image` runs."""


def read_image_itk(
    path: PathLike,
    *,
    kind: ImageKind = "image",
    allowed_labels: Collection[int] | None = None,
) -> sitk.Image:
    """Read a 3-D image with SimpleITK alone, then :func:`validate_image` it.

    :func:`hecktorseg.io.read_image` is the reader to use: it also checks the
    raw voxel block of NIfTI files (truncation, NaN), which ITK zero-fills.
    Parameters and errors are the same.
    """
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", path=p, hint="check the path and the dataset layout")
    try:
        if p.is_dir():
            reader = sitk.ImageSeriesReader()
            files = reader.GetGDCMSeriesFileNames(str(p))
            if not files:
                raise DataError(
                    "folder holds no DICOM series",
                    path=p,
                    hint="point to a NIfTI file or a DICOM series folder",
                )
            reader.SetFileNames(files)
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(p))
    except DataError:
        raise
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown reason"
        raise DataError(
            f"cannot read image ({first[:200]})",
            path=p,
            hint="the file is corrupt, truncated or not an image; re-export or re-download it",
        ) from None
    return validate_image(image, path=p, kind=kind, allowed_labels=allowed_labels)


def validate_image(
    image: sitk.Image,
    *,
    path: PathLike | None = None,
    kind: ImageKind = "image",
    allowed_labels: Collection[int] | None = None,
) -> sitk.Image:
    """Check that ``image`` is a usable 3-D image of the given kind and cast it.

    See :func:`hecktorseg.io.read_image` for the checks; ``path`` only names the image in errors.
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(
            f"image has {image.GetNumberOfComponentsPerPixel()} components per voxel, expected 1",
            path=path,
            hint="give one scalar image per modality",
        )
    dim = image.GetDimension()
    if dim == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
        dim = 3
    if dim != 3:
        raise DataError(
            f"image is {dim}-D with size {image.GetSize()}, expected a 3-D volume",
            path=path,
            hint="give a 3-D volume (not a single slice or a time series)",
        )
    if min(image.GetSize()) < 2:
        raise DataError(
            f"image has size {image.GetSize()}; every axis needs at least 2 voxels",
            path=path,
            hint="give a 3-D volume, not a single slice",
        )
    if kind == "label":
        array = sitk.GetArrayViewFromImage(image)
        if np.issubdtype(array.dtype, np.floating):
            if not np.all(np.isfinite(array)):
                raise DataError(
                    "label map holds NaN or infinite values", path=path, hint="re-export the mask"
                )
            if not np.array_equal(array, np.round(array)):
                raise DataError(
                    "label map holds non-integer values",
                    path=path,
                    hint="a label map must hold whole label values (0 background, 1 tumour, …)",
                )
        values = np.unique(array)
        if allowed_labels is not None:
            bad = sorted({int(v) for v in values} - {int(v) for v in allowed_labels})
            if bad:
                raise DataError(
                    f"label values {bad} are outside the allowed set {sorted(allowed_labels)}",
                    path=path,
                    hint="remap the labels or choose the matching dataset edition",
                )
        if values.size and (values.min() < 0 or values.max() > 255):
            raise DataError(
                f"label values range from {values.min()} to {values.max()}; expected 0..255",
                path=path,
                hint="remap the labels",
            )
        return sitk.Cast(image, sitk.sitkUInt8)
    image = sitk.Cast(image, sitk.sitkFloat32)
    array = sitk.GetArrayViewFromImage(image)
    finite = np.isfinite(array)
    if not finite.all():
        fraction = 1.0 - float(finite.mean())
        raise DataError(
            f"image holds NaN or infinite values ({fraction:.1%} of voxels)",
            path=path,
            hint="fix the export, or replace them (e.g. with -1024 HU for CT, 0 SUV for PET) before use",
        )
    return image


def write_image(image: sitk.Image, path: PathLike, *, compress: bool = True) -> Path:
    """Write ``image`` atomically, keeping its geometry; the format follows the suffix.

    Parameters
    ----------
    image
        Image to write.
    path
        Destination (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``, …). Parent folders are created.
    compress
        Use the format's compression when it has one.

    Returns
    -------
    pathlib.Path
        The destination path.
    """
    dest = Path(path)
    with atomic_path(dest) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), compress)
        except RuntimeError as exc:
            raise DataError(
                f"cannot write image: {exc}", path=dest, hint="check the suffix and free disk space"
            ) from None
    return dest


def image_to_array(image: sitk.Image) -> npt.NDArray[np.generic]:
    """A copy of the voxel array in (z, y, x) order, as SimpleITK gives it."""
    array: npt.NDArray[np.generic] = sitk.GetArrayFromImage(image)
    return array


def array_to_image(array: npt.ArrayLike, geometry: Geometry) -> sitk.Image:
    """Build an image from a (z, y, x) array and a :class:`~hecktorseg.io.Geometry`."""
    arr = np.asarray(array)
    if arr.shape != geometry.shape_zyx:
        raise DataError(
            f"array shape {arr.shape} does not match the geometry's (z, y, x) shape {geometry.shape_zyx}"
        )
    image = sitk.GetImageFromArray(arr)
    return geometry.apply_to(image)
