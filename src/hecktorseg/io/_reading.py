"""Fast, validated reading of images: :func:`read_image` and :func:`read_images`.

ITK turns NaN into 0 when it reads NIfTI and reads truncated files without
complaint, so the raw voxel block has to be checked too. Rather than
decompressing a ``.nii.gz`` a second time for that, a NIfTI file is
decompressed **once**: one streaming pass checks truncation and NaN and keeps
the voxel bytes, and the image is built from them with the geometry ITK reads
from the header (``ImageFileReader.ReadImageInformation``), so orientation
handling stays ITK's. Files ITK would rescale (``scl_slope``/``scl_inter``),
non-3-D or multi-component files, other formats and DICOM folders take the
ordinary ITK path (:func:`hecktorseg.io.image.read_image_itk`). The files of a
case are read concurrently (zlib releases the GIL). The raw-block checks themselves live in
:mod:`hecktorseg.io._nifti_check` (re-exported here).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.io._meta_check import check_metaimage, is_metaimage
from hecktorseg.io._nifti_check import _ITK_LOCK, _is_nifti, check_file_complete, check_image_file, scan_nifti
from hecktorseg.io.files import check_input_file
from hecktorseg.io.image import ImageKind, read_image_itk, validate_image
from hecktorseg.typing import PathLike

__all__ = [
    "check_file_complete",
    "check_image_file",
    "read_image",
    "read_images",
    "scan_nifti",
]


_io_threads: int | None = None


def set_io_threads(n: int | None) -> None:
    """Threads used to read one case's files (``None``: up to 4, by the CPU count; 1: sequential)."""
    global _io_threads
    _io_threads = n


def _threads() -> int:
    if _io_threads is not None:
        return max(1, _io_threads)
    return max(1, min(4, os.cpu_count() or 1))


_NIFTI_TO_SITK = {
    2: sitk.sitkUInt8,
    4: sitk.sitkInt16,
    8: sitk.sitkInt32,
    16: sitk.sitkFloat32,
    64: sitk.sitkFloat64,
    256: sitk.sitkInt8,
    512: sitk.sitkUInt16,
    768: sitk.sitkUInt32,
}
_NIFTI_TO_NUMPY = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4"}


def _plain_nifti(reader: sitk.ImageFileReader) -> bool:
    """Whether ITK reads the file's voxels as stored: 3-D, scalar, no rescaling."""
    if reader.GetDimension() != 3 or reader.GetNumberOfComponents() != 1:
        return False
    keys = set(reader.GetMetaDataKeys())
    try:
        slope = float(reader.GetMetaData("scl_slope")) if "scl_slope" in keys else 1.0
        inter = float(reader.GetMetaData("scl_inter")) if "scl_inter" in keys else 0.0
    except ValueError:
        return False
    return slope in (0.0, 1.0) and inter == 0.0


def _fast_read(path: Path, kind: ImageKind, labels: Collection[int] | None) -> sitk.Image:
    """Read and validate a NIfTI file with one decompression (see the module docstring)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with _ITK_LOCK:
            reader.ReadImageInformation()
    except RuntimeError:
        scan_nifti(path)  # a precise message for truncated/corrupt files, else ITK's
        return _checked(_itk_read(path), path, kind, labels)
    scanned = scan_nifti(path, keep=_plain_nifti(reader))
    if scanned is None or not scanned[2] or _NIFTI_TO_SITK.get(scanned[1]) != reader.GetPixelID():
        return _checked(_itk_read(path), path, kind, labels)
    endian, datatype, data = scanned
    nx, ny, nz = reader.GetSize()
    dtype = np.dtype(f"{endian}{_NIFTI_TO_NUMPY[datatype]}")
    if len(data) != nx * ny * nz * dtype.itemsize or min(nx, ny, nz) < 2:
        return _checked(_itk_read(path), path, kind, labels)
    array: npt.NDArray[Any] = np.frombuffer(data, dtype=dtype).reshape(nz, ny, nx)
    if kind == "label":
        if dtype.kind != "u" or dtype.itemsize != 1:  # other label encodings: the general checks
            return _checked(_from_array(array, reader), path, kind, labels)
        top = int(array.max())
        if labels is not None and not {int(v) for v in labels} >= set(range(top + 1)):
            bad = sorted({int(v) for v in np.unique(array)} - {int(v) for v in labels})
            if bad:
                raise DataError(
                    f"label values {bad} are outside the allowed set {sorted(labels)}",
                    path=path,
                    hint="remap the labels or choose the matching dataset edition",
                )
        return _from_array(array, reader)
    if dtype != np.float32:  # CT/PET are used as float32
        array = array.astype(np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        raise DataError(
            f"image holds NaN or infinite values ({1.0 - float(finite.mean()):.1%} of voxels)",
            path=path,
            hint="fix the export, or replace them (e.g. with -1024 HU for CT, 0 SUV for PET) before use",
        )
    del finite
    return _from_array(array, reader)


def _from_array(array: npt.NDArray[Any], reader: sitk.ImageFileReader) -> sitk.Image:
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(reader.GetOrigin())
    image.SetSpacing(reader.GetSpacing())
    image.SetDirection(reader.GetDirection())
    return image


def _checked(image: sitk.Image, path: Path, kind: ImageKind, labels: Collection[int] | None) -> sitk.Image:
    return validate_image(image, path=path, kind=kind, allowed_labels=labels)


def _itk_read(path: Path) -> sitk.Image:
    try:
        with _ITK_LOCK:
            return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        first = lines[-1] if lines else "unknown reason"
        raise DataError(
            f"cannot read image ({first[:200]})",
            path=path,
            hint="the file is corrupt, truncated or not an image; re-export or re-download it",
        ) from None


def _slow_read(path: Path, kind: ImageKind, labels: Collection[int] | None) -> sitk.Image:
    with _ITK_LOCK:
        return read_image_itk(path, kind=kind, allowed_labels=labels)


def read_images(
    requests: Sequence[tuple[str | os.PathLike[str], ImageKind, Collection[int] | None]],
) -> list[sitk.Image]:
    """Read and validate several images (``(path, kind, allowed_labels)`` each), concurrently.

    Same checks and errors as :func:`hecktorseg.io.read_image` (missing, unreadable,
    truncated, not 3-D, NaN, label values), raised for the first failing request.
    """
    paths = [Path(r[0]) for r in requests]
    for p in paths:
        st = check_input_file(p, what="image file", allow_dir=True)
        if st.st_size == 0 and p.is_file():
            raise DataError(
                "image file is empty (0 bytes)",
                path=p,
                hint="re-export or re-copy it; an earlier copy may have failed",
            )
    threads = min(_threads(), len(paths))
    kinds = [(kind, labels) for _, kind, labels in requests]
    if threads <= 1:
        return [_read_one(p, kind, labels) for p, (kind, labels) in zip(paths, kinds, strict=True)]
    with cf.ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [
            pool.submit(_read_one, p, kind, labels) for p, (kind, labels) in zip(paths, kinds, strict=True)
        ]
        return [f.result() for f in futures]


def _read_one(path: Path, kind: ImageKind, labels: Collection[int] | None) -> sitk.Image:
    try:
        if not _is_nifti(path):
            if is_metaimage(path):
                check_metaimage(path)  # ITK names a truncated file with an unrelated errno
            return _slow_read(path, kind, labels)
        return _fast_read(path, kind, labels)
    except MemoryError:
        raise DataError(
            "not enough memory to read the image",
            path=path,
            hint="check the image size in its header; crop or downsample it first",
        ) from None


def read_image(
    path: PathLike,
    *,
    kind: ImageKind = "image",
    allowed_labels: Collection[int] | None = None,
) -> sitk.Image:
    """Read and validate one 3-D image (NIfTI, NRRD, MHA, … or a DICOM series folder).

    NIfTI files are decompressed once and their raw voxel block is checked for
    truncation and NaN, which ITK's reader hides (it zero-fills both); other
    formats go through :func:`hecktorseg.io.image.read_image_itk`.

    Parameters
    ----------
    path
        Image file, or a folder holding one DICOM series.
    kind
        ``"ct"``, ``"pet"`` and ``"image"`` are read as float32 and must hold
        finite values; ``"label"`` is read as uint8 and must hold whole numbers
        (within ``allowed_labels`` if given).
    allowed_labels
        For ``kind="label"``: the label values allowed, e.g. ``{0, 1}``.

    Returns
    -------
    SimpleITK.Image
        The image, with its origin, spacing and direction.

    Raises
    ------
    DataError
        The file is missing, unreadable, truncated, not 3-D, holds NaN or
        infinite values, or label values outside ``allowed_labels``.
    """
    (image,) = read_images([(path, kind, allowed_labels)])
    return image
