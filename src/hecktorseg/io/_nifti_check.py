"""NIfTI raw-block checks: truncation, gzip sanity and NaN voxels, read from the file's own bytes.

ITK reads truncated NIfTI files without complaint and turns NaN into 0, so these checks look at
the header and the voxel block themselves: :func:`scan_nifti` (one streaming pass, optionally
keeping the voxel bytes for :func:`hecktorseg.io.read_image`), :func:`check_file_complete` and
the cheap :func:`check_image_file` used to trust an earlier output.
"""

from __future__ import annotations

import os
import threading
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.io._meta_check import check_metaimage, is_metaimage
from hecktorseg.io.files import check_input_file
from hecktorseg.typing import PathLike

__all__ = ["check_file_complete", "check_image_file", "scan_nifti"]

_GZIP_MAX_RATIO = 1100
"""Deflate cannot expand data by more than ~1032:1; a header announcing more than this times the
file's size cannot be right (and allocating it would exhaust the memory)."""

_CHUNK = 1 << 22
_FLOAT_CODES = {16: "f4", 64: "f8"}
_ITK_LOCK = (
    threading.Lock()
)  # ITK's image-IO factories are not guaranteed thread-safe; decompression runs outside


def _is_nifti(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and (name.endswith(".nii") or name.endswith(".nii.gz"))


def _header(raw: bytes, path: Path) -> tuple[str, int, int, int] | None:
    """(endian, datatype, data bytes, data offset) from a NIfTI-1/2 header, or None if not NIfTI."""
    for endian in ("<", ">"):
        if len(raw) < 4:
            return None
        size = int(np.frombuffer(raw[:4], dtype=f"{endian}i4")[0])
        if size == 348 and len(raw) >= 352:
            dims = np.frombuffer(raw[40:56], dtype=f"{endian}i2").astype(np.int64)
            datatype = int(np.frombuffer(raw[70:72], dtype=f"{endian}i2")[0])
            bitpix = int(np.frombuffer(raw[72:74], dtype=f"{endian}i2")[0])
            offset = int(np.frombuffer(raw[108:112], dtype=f"{endian}f4")[0])
        elif size == 540 and len(raw) >= 544:
            datatype = int(np.frombuffer(raw[12:14], dtype=f"{endian}i2")[0])
            bitpix = int(np.frombuffer(raw[14:16], dtype=f"{endian}i2")[0])
            dims = np.frombuffer(raw[16:80], dtype=f"{endian}i8").astype(np.int64)
            offset = int(np.frombuffer(raw[168:176], dtype=f"{endian}i8")[0])
        else:
            continue
        ndim = int(dims[0])
        if not 1 <= ndim <= 7 or np.any(dims[1 : ndim + 1] < 1) or bitpix <= 0:
            raise DataError("invalid NIfTI header (dimensions)", path=path, hint="re-export the image")
        n_bytes = int(np.prod(dims[1 : ndim + 1])) * bitpix // 8
        return endian, datatype, n_bytes, max(offset, size + 4)
    return None


def _check_declared_size(path: Path, info: tuple[str, int, int, int], gz: bool) -> None:
    """Refuse a header announcing more voxel data than the file can possibly hold."""
    size = path.stat().st_size
    declared = info[2] + info[3]
    limit = size * _GZIP_MAX_RATIO + (1 << 16) if gz else size
    if declared > limit:
        raise DataError(
            f"header announces {declared:,} bytes of image data, more than a file of {size:,} bytes can hold",
            path=path,
            hint="the file is truncated or its header is corrupt; re-export or re-download it",
        )


def scan_nifti(path: str | os.PathLike[str], *, keep: bool = False) -> tuple[str, int, bytearray] | None:
    """Check in one streaming pass that a NIfTI file is complete and holds no NaN.

    Parameters
    ----------
    path
        A ``.nii`` or ``.nii.gz`` file.
    keep
        Also return the voxel bytes.

    Returns
    -------
    tuple or None
        ``(endian, nifti datatype, voxel bytes)`` (the bytes are empty unless
        ``keep``), or ``None`` when the file turns out not to be NIfTI.

    Raises
    ------
    DataError
        The gzip stream is corrupt or ends early, the file holds fewer bytes than
        its header announces, or floating-point voxels are NaN.
    """
    p = Path(path)
    gz = p.name.lower().endswith(".gz")
    hint = "the file is truncated or corrupt; re-export or re-download it"
    decomp = zlib.decompressobj(zlib.MAX_WBITS | 16) if gz else None
    head = b""
    info: tuple[str, int, int, int] | None = None
    dtype: np.dtype[np.floating] | None = None
    pos = 0  # decompressed bytes seen
    carry = b""
    n_nan = 0
    n_vox = 0
    kept = bytearray()
    try:
        with p.open("rb") as handle:
            while True:
                block = handle.read(_CHUNK)
                if decomp is not None:
                    out = decomp.decompress(block)
                    while decomp.eof and decomp.unused_data:  # concatenated gzip members
                        rest = decomp.unused_data
                        decomp = zlib.decompressobj(zlib.MAX_WBITS | 16)
                        out += decomp.decompress(rest)
                else:
                    out = block
                if info is None:
                    head += out
                    if len(head) < 544 and block:
                        continue
                    info = _header(head, p)
                    if info is None:
                        return None  # not NIfTI after all: leave it to the reader
                    _check_declared_size(p, info, gz)
                    code = _FLOAT_CODES.get(info[1])
                    dtype = None if code is None else np.dtype(f"{info[0]}{code}")
                    out, head = head, b""
                    if keep:
                        kept = bytearray(info[2])
                start = max(info[3] - pos, 0)
                stop = min(info[3] + info[2] - pos, len(out))
                if keep and stop > start:
                    at = pos + start - info[3]
                    kept[at : at + stop - start] = memoryview(out)[start:stop]
                if dtype is not None and not keep and stop > start:
                    buf = carry + out[start:stop]
                    usable = len(buf) // dtype.itemsize * dtype.itemsize
                    values = np.frombuffer(buf, dtype=dtype, count=usable // dtype.itemsize)
                    n_nan += int(np.count_nonzero(np.isnan(values)))
                    n_vox += values.size
                    carry = buf[usable:]
                pos += len(out)
                if not block:
                    break
    except (zlib.error, EOFError) as exc:
        raise DataError(f"cannot decompress image ({exc})", path=p, hint=hint) from None
    except OSError as exc:
        raise DataError(f"cannot read image ({exc})", path=p, hint="check the file's permissions") from None
    if decomp is not None and not decomp.eof:
        raise DataError("the gzip stream ends early", path=p, hint=hint)
    expected = info[3] + info[2]
    if pos < expected:
        raise DataError(
            f"file holds {pos} bytes of image data, its header announces {expected}", path=p, hint=hint
        )
    if keep and dtype is not None:
        values = np.frombuffer(kept, dtype=dtype)
        n_nan, n_vox = int(np.count_nonzero(np.isnan(values))), values.size
    if n_nan:
        raise DataError(
            f"image holds NaN values ({n_nan / max(n_vox, 1):.1%} of voxels)",
            path=p,
            hint="fix the export, or replace them (e.g. with -1024 HU for CT, 0 SUV for PET) before use",
        )
    return info[0], info[1], kept


def check_file_complete(path: PathLike) -> None:
    """Check that a NIfTI file holds its whole voxel block and no NaN, a MetaImage its whole block
    (other files pass).

    Raises
    ------
    DataError
        The gzip stream is corrupt or ends early, the file is shorter than its
        header announces, or floating-point voxels are NaN.
    """
    p = Path(path)
    if _is_nifti(p):
        scan_nifti(p)
    elif is_metaimage(p):
        check_metaimage(p)


def check_image_file(path: PathLike) -> None:
    """Cheaply check that an image file written earlier is complete (header and size).

    Used to decide whether an earlier output can be trusted as "done". A NIfTI
    file's header gives the size of its voxel block; an uncompressed file must be
    at least that long, and a ``.nii.gz`` file's gzip trailer (the uncompressed
    size) must match it. Only the first few hundred bytes are decompressed. When
    the trailer does not match (e.g. several gzip members), the file is scanned in
    full. Files in other formats must open with ITK.

    Raises
    ------
    DataError
        The path is not a regular file (a folder, a FIFO, …), is empty, is not an
        image, or is shorter than its header announces.
    """
    p = Path(path)
    st = check_input_file(p, what="image file")
    hint = "the earlier output is incomplete or not an image; it is redone (or delete it)"
    if st.st_size == 0:
        raise DataError("the file is empty", path=p, hint=hint)
    name = p.name.lower()
    if not name.endswith((".nii", ".nii.gz")):
        if is_metaimage(p):
            try:
                check_metaimage(p)
            except DataError as exc:
                raise DataError(exc.message, path=exc.path, hint=hint) from None
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        try:
            with _ITK_LOCK:
                reader.ReadImageInformation()
        except RuntimeError:
            raise DataError("not a readable image", path=p, hint=hint) from None
        return
    gz = name.endswith(".gz")
    try:
        with p.open("rb") as handle:
            raw = handle.read(1 << 16)
            if gz:
                try:
                    head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(raw, 1024)
                except zlib.error:
                    raise DataError("not a gzip-compressed NIfTI file", path=p, hint=hint) from None
                handle.seek(-4, os.SEEK_END)
                trailer = int.from_bytes(handle.read(4), "little")
            else:
                head, trailer = raw, 0
    except OSError as exc:
        raise DataError(f"cannot read the file ({exc.strerror or exc})", path=p, hint=hint) from None
    info = _header(head, p)
    if info is None:
        raise DataError("not a NIfTI file", path=p, hint=hint)
    expected = info[2] + info[3]
    if not gz:
        if st.st_size < expected:
            raise DataError(
                f"file holds {st.st_size} bytes, its header announces {expected}", path=p, hint=hint
            )
        return
    if trailer != expected % (1 << 32):
        scan_nifti(p)  # several gzip members or padding: the full check decides
