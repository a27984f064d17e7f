"""Clinical tables of the 2025 layout that are not what they seem (issue 23's second corpus, finding 13).

A table silently dropped changes every case's centre (CenterID → id prefix) and so the centre folds.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from robust_helpers import assert_clean_error, run_cli, write_tiny_dataset

TABLE = "HECKTOR_2025_Training_Task_1.csv"


@pytest.fixture
def d2025(tmp_path: Path) -> Path:
    root = tmp_path / "d"
    write_tiny_dataset(root, 2, edition="2025")
    return root


@pytest.mark.parametrize("kind", ["folder", "fifo", "link-loop"])
def test_a_table_that_is_not_a_file_is_an_error(kind: str, d2025: Path, tmp_path: Path) -> None:
    """A FIFO, folder or symlink loop named as the table used to be ignored silently."""
    table = d2025 / TABLE
    table.unlink()
    if kind == "folder":
        table.mkdir()
    elif kind == "fifo":
        os.mkfifo(table)
    else:
        table.symlink_to(table.name)
    code, output = run_cli(["preprocess", d2025, tmp_path / "pre", "--size", "16", "--spacing", "9"])
    assert_clean_error(code, output, "error:", TABLE, "clinical table is not a readable regular file")
    assert not (tmp_path / "pre").exists() or not list((tmp_path / "pre").rglob("*.nii.gz"))


def test_a_table_without_patientid_names_the_column(d2025: Path) -> None:
    """Its first column used to become the id, with a misleading "no CenterID column" warning."""
    from hecktorseg.errors import DataError
    from hecktorseg.io import discover_cases

    table = d2025 / TABLE
    lines = table.read_text().splitlines()
    table.write_text("\n".join([lines[0].replace("PatientID", "Patient"), *lines[1:]]) + "\n")
    with pytest.raises(DataError, match="no PatientID column") as info:
        discover_cases(d2025)
    assert TABLE in str(info.value)


def test_decomposed_unicode_folder_names_match_composed_rows(d2025: Path) -> None:
    """A folder name in NFD (as macOS writes it) did not match the table's NFC row: no clinical values."""
    from hecktorseg.io import discover_cases

    old = "CHUM-001"
    nfc = "CHUMé-001"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    folder = d2025 / old
    for path in folder.iterdir():
        path.rename(folder / path.name.replace(old, nfd))
    folder.rename(d2025 / nfd)
    table = d2025 / TABLE
    table.write_text(table.read_text().replace(old, nfc))
    (case,) = [c for c in discover_cases(d2025) if c.patient_id.startswith("CHUM")]
    assert case.clinical.get("CenterID") is not None and case.centre == "1"
