"""Clinical tables (HECKTOR 2025/2026) as per-case metadata, and the one centre rule.

A clinical table is a CSV file with one row per patient and a ``PatientID``
column (HECKTOR 2025 Task 1: ``HECKTOR_2025_Training_Task_1.csv``; HECKTOR
2026: ``HECKTOR_2026_Training_Task.csv``; the imagesTr variant of 2025:
``hecktor2025_clinical_info_training.csv`` and ``hecktor2025_endpoint_training.csv``).
Each row becomes a :class:`ClinicalInfo`: an immutable mapping from column name
to a number (``float``), a text (``str``) or ``None`` where the value is missing
(an empty cell, ``NA``, ``N/A``, ``NaN``, ``None`` or ``null``). Missing values
stay missing: nothing is imputed.

The centre of a case (used by leave-one-centre-out folds) follows **one rule**,
:func:`centre_of`: the table's ``CenterID`` when it has a value for the case,
otherwise the letters at the start of the patient id (``CHUM-001`` → ``CHUM``).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeAlias

from hecktorseg.errors import DataError
from hecktorseg.io._csv import csv_rows, open_csv_table
from hecktorseg.typing import PathLike

__all__ = [
    "CENTRE_COLUMN",
    "ID_COLUMN",
    "MISSING_VALUES",
    "ClinicalInfo",
    "ClinicalValue",
    "centre_from_id",
    "centre_of",
    "merge_clinical_tables",
    "read_clinical_table",
    "to_clinical",
]

logger = logging.getLogger(__name__)

ClinicalValue: TypeAlias = str | float | None
"""One clinical value: a number, a text, or ``None`` when missing."""

ID_COLUMN = "PatientID"
"""The column naming the patient in every clinical table."""
CENTRE_COLUMN = "CenterID"
"""The column giving the acquisition centre (used by :func:`centre_of` when present)."""
MISSING_VALUES: frozenset[str] = frozenset({"", "na", "n/a", "nan", "none", "null"})
"""Cell texts (compared in lower case, stripped) that mean "missing"."""


class ClinicalInfo(Mapping[str, ClinicalValue]):
    """The clinical values of one case: an immutable, hashable, picklable mapping.

    ``info["Age"]`` is ``62.0``, ``info["HPV Status"]`` may be ``None`` (missing);
    columns the table does not have raise ``KeyError`` (use ``info.get``).
    """

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, ClinicalValue] | None = None) -> None:
        self._items: tuple[tuple[str, ClinicalValue], ...] = tuple((values or {}).items())

    def __getitem__(self, key: str) -> ClinicalValue:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"ClinicalInfo({dict(self._items)!r})"

    def __reduce__(self) -> tuple[type[ClinicalInfo], tuple[dict[str, ClinicalValue]]]:
        return (ClinicalInfo, (dict(self._items),))

    def to_dict(self) -> dict[str, ClinicalValue]:
        """A plain (JSON-friendly) dict copy."""
        return dict(self._items)


def to_clinical(value: Mapping[str, ClinicalValue] | None) -> ClinicalInfo:
    """Converter: ``None`` or any mapping to a :class:`ClinicalInfo`."""
    return value if isinstance(value, ClinicalInfo) else ClinicalInfo(value)


def centre_from_id(patient_id: str) -> str:
    """The acquisition centre encoded in a patient id: the letters before the digits or hyphen.

    ``CHGJ007 → CHGJ``, ``CHUM-001 → CHUM``, ``MDA-123 → MDA``; ids without a
    leading letter give ``"UNKNOWN"``.
    """
    match = re.match(r"[A-Za-z]+", patient_id.strip())
    return match.group(0).upper() if match else "UNKNOWN"


def _centre_text(value: ClinicalValue) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    text = str(value).strip()
    return text or None


def centre_of(patient_id: str, clinical: Mapping[str, ClinicalValue] | None = None) -> str:
    """The centre of a case — the one rule used everywhere (discovery, manifest, folds).

    Parameters
    ----------
    patient_id
        The patient id.
    clinical
        The case's clinical values, if a table gave any.

    Returns
    -------
    str
        ``CenterID`` when ``clinical`` has a value for it (whole numbers without
        a decimal point: ``3.0`` → ``"3"``), otherwise :func:`centre_from_id`.
    """
    if clinical is not None:
        text = _centre_text(clinical.get(CENTRE_COLUMN))
        if text is not None:
            return text
    return centre_from_id(patient_id)


def _parse(cell: str) -> ClinicalValue:
    text = cell.strip()
    if text.lower() in MISSING_VALUES:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else None


def read_clinical_table(path: PathLike, *, require_centre: bool = False) -> dict[str, ClinicalInfo]:
    """Read a clinical table: one :class:`ClinicalInfo` per patient id.

    Parameters
    ----------
    path
        CSV file with a ``PatientID`` column (ids are compared in Unicode NFC form).
    require_centre
        Raise if the table has no ``CenterID`` column.

    Returns
    -------
    dict
        Patient id → its values (every column but the id, in file order).

    Raises
    ------
    DataError
        The file is missing, unreadable, not CSV, empty, has no ``PatientID`` column,
        or a patient id is empty or appears twice (the message names the table and the lines); with
        ``require_centre``, the table lacks ``CenterID``.
    """
    p, raw_header, reader = open_csv_table(
        path,
        what="clinical table",
        not_found_hint="check the path",
        empty_hint=f"the first line must name the columns ({ID_COLUMN}, …)",
        bad_csv_hint="fix the table",
    )
    header = [h.strip() for h in raw_header]
    if require_centre and CENTRE_COLUMN not in header:
        raise DataError(
            f"clinical table has no {CENTRE_COLUMN} column (header: {','.join(header)})",
            path=p,
            hint=f"add a {CENTRE_COLUMN} column, or let centres come from the patient-id prefix",
        )
    if ID_COLUMN not in header:
        raise DataError(
            f"clinical table has no {ID_COLUMN} column (header: {','.join(header)[:200]})",
            path=p,
            hint=f"name the column of patient ids {ID_COLUMN}",
        )
    id_col = header.index(ID_COLUMN)
    rows: dict[str, ClinicalInfo] = {}
    seen_at: dict[str, int] = {}
    for line, row in csv_rows(reader, p, bad_csv_hint="fix the table"):
        cells = row + [""] * (len(header) - len(row))
        pid = unicodedata.normalize("NFC", cells[id_col].strip())  # one spelling of accented ids
        if not pid:
            raise DataError(f"line {line}: empty {ID_COLUMN}", path=p, hint="fix the row")
        if pid in seen_at:
            raise DataError(
                f"clinical table has patient {pid} twice (lines {seen_at[pid]} and {line})",
                path=p,
                hint="keep one row per patient",
            )
        seen_at[pid] = line
        rows[pid] = ClinicalInfo(
            {name: _parse(cells[i]) for i, name in enumerate(header) if i != id_col and name}
        )
    return rows


def merge_clinical_tables(paths: Sequence[PathLike]) -> dict[str, ClinicalInfo]:
    """Read several clinical tables of one dataset and join their columns per patient.

    A column found in two tables keeps the first table's value unless that one is missing.
    When no table has a ``CenterID`` column, a warning naming the tables is logged and
    :func:`centre_of` falls back to the patient-id prefix.

    Raises
    ------
    DataError
        See :func:`read_clinical_table`.
    """
    merged: dict[str, dict[str, ClinicalValue]] = {}
    has_centre = False
    for path in paths:
        table = read_clinical_table(path)
        has_centre = has_centre or any(CENTRE_COLUMN in info for info in table.values())
        for pid, info in table.items():
            row = merged.setdefault(pid, {})
            for name, value in info.items():
                if row.get(name) is None:
                    row[name] = value
    if paths and not has_centre:
        logger.warning(
            "%s: clinical table has no %s column; centres come from the patient-id prefix",
            ", ".join(str(p) for p in paths),
            CENTRE_COLUMN,
        )
    return {pid: ClinicalInfo(values) for pid, values in merged.items()}
