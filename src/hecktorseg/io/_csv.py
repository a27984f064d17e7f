"""Opening a CSV table for reading: one place for the checks and one-line errors every table shares.

The box tables (:mod:`hecktorseg.io.tables`) and the clinical tables
(:mod:`hecktorseg.io.clinical`) both start here: the file is checked to be a regular file
(a FIFO or device would block or never end), read as UTF-8 (a byte-order mark is dropped)
and its header line parsed; what goes wrong becomes a :class:`~hecktorseg.errors.DataError`
naming the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hecktorseg.errors import DataError
from hecktorseg.io.files import check_input_file
from hecktorseg.typing import PathLike

if TYPE_CHECKING:
    from _csv import Reader

__all__: list[str] = []


def open_csv_table(
    path: PathLike, *, what: str, not_found_hint: str, empty_hint: str, bad_csv_hint: str
) -> tuple[Path, list[str], Reader]:
    """The path, the header cells (as written) and the reader of the remaining rows of a CSV table.

    Parameters
    ----------
    path
        The table.
    what
        What the table is, for the messages (``"box table"``).
    not_found_hint, empty_hint, bad_csv_hint
        The hints of the errors for a missing file, an empty file and a header that is not CSV.

    Raises
    ------
    DataError
        The file is missing, not a regular file, unreadable, not UTF-8, empty, or its
        first line is not valid CSV.
    """
    p = Path(path)
    if p.exists():
        check_input_file(p, what=what)  # a FIFO or device would block or never end
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{what} not found", path=p, hint=not_found_hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {what} ({exc})", path=p, hint="give a UTF-8 CSV file") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{what} is empty", path=p, hint=empty_hint) from None
    except csv.Error as exc:
        raise DataError(f"line 1: not valid CSV ({exc})", path=p, hint=bad_csv_hint) from None
    return p, header, reader


def csv_rows(reader: Reader, path: Path, *, bad_csv_hint: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows of a table after its header, each with its line number.

    Raises
    ------
    DataError
        A line is not valid CSV (the message names the line).
    """
    try:
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            yield reader.line_num, row
    except csv.Error as exc:
        raise DataError(
            f"line {reader.line_num}: not valid CSV ({exc})", path=path, hint=bad_csv_hint
        ) from None
