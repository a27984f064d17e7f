"""HECKTOR box tables (``bbox.csv``, ``hecktor2021_bbox_*.csv``): strict reading and writing.

A box table has a header row with at least the columns
``PatientID,x1,x2,y1,y2,z1,z2`` (world millimetres, ITK/LPS coordinates as in
the challenge) and one row per patient.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path

from hecktorseg.errors import DataError
from hecktorseg.io._csv import csv_rows, open_csv_table
from hecktorseg.io.atomic import atomic_write_text
from hecktorseg.io.bbox import BBox
from hecktorseg.typing import PathLike

__all__ = ["BBOX_COLUMNS", "read_bbox_table", "write_bbox_table"]

BBOX_COLUMNS: tuple[str, ...] = ("PatientID", "x1", "x2", "y1", "y2", "z1", "z2")
"""Columns every box table must have."""

_FIX = "fix the row, or pass another box table"


def read_bbox_table(path: PathLike) -> dict[str, BBox]:
    """Read a HECKTOR box table.

    Parameters
    ----------
    path
        CSV file with columns ``PatientID,x1,x2,y1,y2,z1,z2`` (extra columns are ignored).

    Returns
    -------
    dict
        Box per patient id, in file order.

    Raises
    ------
    DataError
        The file is missing or unreadable, a column is missing, a value is not a
        finite number, a box is empty (``x1 >= x2`` …), a patient id is empty or
        appears twice, or the table has no rows. The message names the file and
        the line number (the header is line 1).
    """
    p, header, reader = open_csv_table(
        path,
        what="box table",
        not_found_hint="check the path to the bbox CSV",
        empty_hint="the first line must be PatientID,x1,x2,y1,y2,z1,z2",
        bad_csv_hint=_FIX,
    )
    names = [h.strip() for h in header]
    # The first column is the patient id, whatever its header says (some exports leave it blank).
    if names and names[0] != "PatientID" and "PatientID" not in names:
        names[0] = "PatientID"
    missing = [c for c in BBOX_COLUMNS if c not in names]
    if missing:
        raise DataError(
            f"line 1: box table lacks column(s) {', '.join(missing)} (header: {','.join(header)})",
            path=p,
            hint="the header must be PatientID,x1,x2,y1,y2,z1,z2",
        )
    col = {c: names.index(c) for c in BBOX_COLUMNS}
    boxes: dict[str, BBox] = {}
    seen_at: dict[str, int] = {}
    for line, row in csv_rows(reader, p, bad_csv_hint=_FIX):
        if len(row) < len(names):
            raise DataError(f"line {line}: expected {len(names)} values, got {len(row)}", path=p, hint=_FIX)
        pid = row[col["PatientID"]].strip()
        if not pid:
            raise DataError(f"line {line}: empty PatientID", path=p, hint=_FIX)
        if pid in seen_at:
            raise DataError(
                f"line {line}: patient {pid} appears twice (also on line {seen_at[pid]})",
                path=p,
                hint="keep one row per patient",
            )
        values: list[float] = []
        for name in BBOX_COLUMNS[1:]:
            cell = row[col[name]].strip()
            try:
                value = float(cell)
            except ValueError:
                raise DataError(
                    f"line {line} ({pid}): {name}={cell!r} is not a number", path=p, hint=_FIX
                ) from None
            if not math.isfinite(value):
                raise DataError(f"line {line} ({pid}): {name}={cell!r} is not finite", path=p, hint=_FIX)
            values.append(value)
        x1, x2, y1, y2, z1, z2 = values
        for lo, hi, axis in ((x1, x2, "x"), (y1, y2, "y"), (z1, z2, "z")):
            if not lo < hi:
                raise DataError(
                    f"line {line} ({pid}): {axis}1={lo:g} is not below {axis}2={hi:g}",
                    path=p,
                    hint="the lower corner comes first (x1 < x2, y1 < y2, z1 < z2)",
                )
        boxes[pid] = BBox(x1, x2, y1, y2, z1, z2)
        seen_at[pid] = line
    if not boxes:
        raise DataError("box table has a header but no rows", path=p, hint="add one row per patient")
    return boxes


def write_bbox_table(path: PathLike, boxes: Mapping[str, BBox]) -> Path:
    """Write a box table (``PatientID,x1,x2,y1,y2,z1,z2``) atomically, rows sorted by patient id.

    Numbers are written with full precision, so :func:`read_bbox_table` gives the same boxes back.

    Parameters
    ----------
    path
        Destination CSV.
    boxes
        Box per patient id.

    Returns
    -------
    pathlib.Path
        The destination.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BBOX_COLUMNS)
    for pid in sorted(boxes):
        b = boxes[pid]
        writer.writerow([pid, *(repr(float(v)) for v in (b.x1, b.x2, b.y1, b.y2, b.z1, b.z2))])
    dest = Path(path)
    atomic_write_text(dest, out.getvalue())
    return dest
