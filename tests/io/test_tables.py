"""Box tables: exact round trip, and every kind of bad row named by file and line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hecktorseg.errors import DataError
from hecktorseg.io import BBox, read_bbox_table, write_bbox_table

HEADER = "PatientID,x1,x2,y1,y2,z1,z2\n"
GOOD = "CHGJ007,-70.5,73.25,-80,64,-300.125,-156.0\n"


def test_round_trip_is_exact(tmp_path: Path) -> None:
    boxes = {
        "CHUS010": BBox(-71.123456789, 72.987654321, -90.1, 53.9, -412.3333333, -268.3333333),
        "CHGJ007": BBox.from_center((0.1, 0.2, 0.3), (144.0, 143.5, 144.7)),
    }
    path = write_bbox_table(tmp_path / "bbox.csv", boxes)
    back = read_bbox_table(path)
    assert back == boxes
    assert list(back) == ["CHGJ007", "CHUS010"]  # rows sorted by patient id
    with path.open(newline="") as handle:  # an ordinary CSV reader sees the challenge's columns
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["PatientID", "x1", "x2", "y1", "y2", "z1", "z2"]
    assert float(rows[1]["z1"]) == boxes["CHUS010"].z1


def test_reads_challenge_style_table(tmp_path: Path) -> None:
    path = tmp_path / "bbox.csv"
    path.write_text("\ufeff" + "PatientID,x1,x2,y1,y2,z1,z2,extra\n" + GOOD.strip() + ",note\n\n")
    box = read_bbox_table(path)["CHGJ007"]
    assert (box.x1, box.x2, box.y1, box.y2, box.z1, box.z2) == (-70.5, 73.25, -80.0, 64.0, -300.125, -156.0)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", "empty"),
        ("PatientID,x1,x2,y1,y2,z1\n" + GOOD, "line 1: .*lacks column.*z2"),
        (HEADER, "no rows"),
        (HEADER + GOOD + "CHGJ008,a,1,2,3,4,5\n", r"line 3 \(CHGJ008\): x1='a' is not a number"),
        (HEADER + "CHGJ008,0,1,2,3,4,nan\n", r"line 2 \(CHGJ008\): z2='nan' is not finite"),
        (HEADER + "CHGJ008,5,1,2,3,4,5\n", r"line 2 \(CHGJ008\): x1=5 is not below x2=1"),
        (HEADER + "CHGJ008,0,1,3,3,4,5\n", r"line 2 \(CHGJ008\): y1=3 is not below y2=3"),
        (HEADER + "CHGJ008,0,1,2,3,6,5\n", r"line 2 \(CHGJ008\): z1=6 is not below z2=5"),
        (HEADER + GOOD + "\n" + GOOD, r"line 4: patient CHGJ007 appears twice \(also on line 2\)"),
        (HEADER + ",0,1,2,3,4,5\n", "line 2: empty PatientID"),
        (HEADER + "CHGJ008,0,1,2\n", "line 2: expected 7 values, got 4"),
    ],
)
def test_bad_tables_name_file_and_line(tmp_path: Path, text: str, pattern: str) -> None:
    path = tmp_path / "bbox.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=pattern) as info:
        read_bbox_table(path)
    assert str(path) in str(info.value)


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_bbox_table(tmp_path / "nope.csv")
