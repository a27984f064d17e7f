"""Completeness of MetaImage files (``.mha``, ``.mhd`` + raw) from their text header alone.

ITK reads a truncated MetaImage only to fail with the operating system's last error
number, which is unrelated ("No such file or directory"). The header states the voxel
block's size (``DimSize`` × channels × the size of ``ElementType``, or
``CompressedDataSize``), so a short file is found before ITK opens it, and named as
truncated with the two sizes.
"""

from __future__ import annotations

import math
from pathlib import Path

from hecktorseg.errors import DataError
from hecktorseg.typing import PathLike

__all__ = ["check_metaimage", "is_metaimage"]

METAIMAGE_SUFFIXES: tuple[str, ...] = (".mha", ".mhd")

ELEMENT_BYTES: dict[str, int] = {
    "MET_CHAR": 1,
    "MET_UCHAR": 1,
    "MET_SHORT": 2,
    "MET_USHORT": 2,
    "MET_INT": 4,
    "MET_UINT": 4,
    "MET_LONG": 4,
    "MET_ULONG": 4,
    "MET_LONG_LONG": 8,
    "MET_ULONG_LONG": 8,
    "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}
"""Bytes per value of each MetaIO ``ElementType`` (MetaIO's own table; ``MET_LONG`` is 4)."""

_MAX_HEADER = 1 << 16
"""A MetaImage header is a few hundred bytes; the search for its end stops here."""

_FIX = "copy or export it again (an interrupted copy or download leaves a short file)"


def is_metaimage(path: PathLike) -> bool:
    """Whether ``path`` is named as a MetaImage file."""
    return Path(path).name.lower().endswith(METAIMAGE_SUFFIXES)


def _header(path: Path) -> tuple[dict[str, str], int] | None:
    """The header fields and the offset of the voxel block, or ``None`` if it cannot be parsed."""
    with path.open("rb") as fh:
        head = fh.read(_MAX_HEADER)
    fields: dict[str, str] = {}
    offset = 0
    for raw in head.splitlines(keepends=True):
        offset += len(raw)
        key, sep, value = raw.decode("latin-1").partition("=")
        if not sep:
            return None
        fields[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            return fields, offset
    return None


def _expected_bytes(fields: dict[str, str]) -> int | None:
    try:
        dims = [int(v) for v in fields["DimSize"].split()]
        channels = int(fields.get("ElementNumberOfChannels", "1"))
    except (KeyError, ValueError):
        return None
    if fields.get("CompressedData", "False").lower() == "true":
        size = fields.get("CompressedDataSize")
        return int(size) if size and size.isdigit() else None
    element = ELEMENT_BYTES.get(fields.get("ElementType", ""))
    return None if element is None else math.prod(dims) * channels * element


def check_metaimage(path: PathLike) -> None:
    """Check that a MetaImage file (or its raw data file) holds the voxel block its header announces.

    Headers this check does not understand (a list of slice files, an unknown element
    type, compressed data without ``CompressedDataSize``) pass; ITK reads those.

    Raises
    ------
    DataError
        The file (or the ``.raw`` file it names) is shorter than the header says, or the
        data file it names does not exist.
    """
    p = Path(path)
    parsed = _header(p)
    if parsed is None:
        return
    fields, offset = parsed
    expected = _expected_bytes(fields)
    data_file = fields["ElementDataFile"]
    if expected is None or data_file in ("LIST",) or "%" in data_file:
        return
    if data_file == "LOCAL":
        target, held = p, p.stat().st_size - offset
    else:
        target = p.parent / data_file
        if not target.is_file():
            raise DataError(
                f"the header names the data file {data_file}, which does not exist",
                path=p,
                hint=f"put {data_file} beside the header",
            )
        skip = int(fields.get("HeaderSize", "0") or 0)
        held = target.stat().st_size - max(skip, 0)
    if held < expected:
        raise DataError(
            f"truncated image: the header announces {expected} bytes of voxels, the file holds {max(held, 0)}",
            path=target,
            hint=_FIX,
        )
