"""Clinical tables as per-case metadata, and the one centre rule."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from hecktorseg.errors import DataError
from hecktorseg.io import (
    ClinicalInfo,
    centre_from_id,
    centre_of,
    discover_cases,
    merge_clinical_tables,
    read_clinical_table,
)
from hecktorseg.training.splits import centre_of as training_centre_of


def _table(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_values_missing_values_and_types(tmp_path: Path) -> None:
    table = _table(
        tmp_path / "t.csv",
        "PatientID,CenterID,Gender,Age,Tobacco Consumption,HPV Status,Performance Status\n"
        "CHUM-001,1,M,61,Yes,1,0\n"
        "CHUP-002,2,F,,NA,N/A,nan\n"
        "MDA-003,3,M,70.5,,  ,None\n",
    )
    rows = read_clinical_table(table)
    assert list(rows) == ["CHUM-001", "CHUP-002", "MDA-003"]
    assert dict(rows["CHUM-001"]) == {
        "CenterID": 1.0,
        "Gender": "M",
        "Age": 61.0,
        "Tobacco Consumption": "Yes",
        "HPV Status": 1.0,
        "Performance Status": 0.0,
    }
    second = rows["CHUP-002"]
    assert second["Gender"] == "F"
    for column in ("Age", "Tobacco Consumption", "HPV Status", "Performance Status"):
        assert column in second and second[column] is None  # missing stays missing
    assert rows["MDA-003"]["Age"] == 70.5 and rows["MDA-003"]["HPV Status"] is None
    with pytest.raises(KeyError):
        second["Weight"]


def test_clinical_info_is_immutable_hashable_and_picklable() -> None:
    info = ClinicalInfo({"Age": 61.0, "HPV Status": None})
    assert info == {"Age": 61.0, "HPV Status": None} and hash(info) == hash(ClinicalInfo(dict(info)))
    assert pickle.loads(pickle.dumps(info)) == info
    assert not hasattr(info, "__setitem__")


def test_duplicate_ids_name_the_table(tmp_path: Path) -> None:
    table = _table(tmp_path / "dup.csv", "PatientID,CenterID\nA-001,1\nB-002,2\nA-001,1\n")
    with pytest.raises(
        DataError, match=r"dup\.csv: clinical table has patient A-001 twice \(lines 2 and 4\)"
    ):
        read_clinical_table(table)


def test_table_without_centre_column(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    table = _table(tmp_path / "nocentre.csv", "PatientID,Age\nCHUM-001,61\n")
    with caplog.at_level(logging.WARNING, logger="hecktorseg"):
        rows = merge_clinical_tables([table])
    assert "nocentre.csv" in caplog.text and "no CenterID column" in caplog.text
    assert centre_of("CHUM-001", rows["CHUM-001"]) == "CHUM"
    with pytest.raises(DataError, match=r"nocentre\.csv: clinical table has no CenterID column"):
        read_clinical_table(table, require_centre=True)


@pytest.mark.parametrize(
    ("pid", "clinical", "centre"),
    [
        ("CHUM-001", {"CenterID": 3.0}, "3"),  # the table's CenterID wins over the prefix
        ("CHUM-001", {"CenterID": "HGJ"}, "HGJ"),
        ("CHUM-001", {"CenterID": 2.5}, "2.5"),
        ("CHUM-001", {"CenterID": None}, "CHUM"),  # missing value: the id prefix
        ("CHUM-001", {"Age": 60.0}, "CHUM"),  # no CenterID column: the id prefix
        ("CHGJ007", None, "CHGJ"),
        ("007", None, "UNKNOWN"),
    ],
)
def test_centre_rule(pid: str, clinical: dict[str, float | str | None] | None, centre: str) -> None:
    assert centre_of(pid, clinical) == centre


def test_one_centre_rule_everywhere() -> None:
    for pid in ("CHGJ007", "CHUM-001", "hgj_001", "007"):
        assert training_centre_of(pid) == centre_of(pid) == centre_from_id(pid)


def test_discovered_cases_carry_the_table(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2025", n_cases=3)
    cases = discover_cases(root)
    assert [c.centre for c in cases] == ["1", "2", "3"]
    table = read_clinical_table(root / "HECKTOR_2025_Training_Task_1.csv")
    for c in cases:
        assert c.clinical == table[c.patient_id]
    # a table naming a patient twice stops discovery with the table's name
    path = root / "HECKTOR_2025_Training_Task_1.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(
        DataError, match=r"HECKTOR_2025_Training_Task_1\.csv: clinical table has patient CHUM-001"
    ):
        discover_cases(root)


def test_clinical_table_that_is_not_a_file_is_refused_like_a_box_table(tmp_path: Path) -> None:
    """Both tables open through one helper: a folder (or FIFO, device) is named as such."""
    from hecktorseg.io import read_bbox_table

    folder = tmp_path / "HECKTOR_2025_Training_Task_1.csv"
    folder.mkdir()
    messages = []
    for read in (read_clinical_table, read_bbox_table):
        with pytest.raises(DataError) as info:
            read(folder)
        messages.append(str(info.value))
    assert all(str(folder) in m and "folder" in m for m in messages), messages
    assert "clinical table" in messages[0] and "box table" in messages[1], messages
