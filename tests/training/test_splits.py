"""Cross-validation splits: leave-one-centre-out, seeded random k-fold and user files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hecktorseg.errors import ConfigError
from hecktorseg.io import centre_of
from hecktorseg.training import load_split_file, make_splits, save_split

IDS = [f"{c}{i:03d}" for i, c in enumerate(["CHGJ", "CHMR", "CHUM", "CHUS"] * 5, start=1)]


def test_centre_of() -> None:
    assert centre_of("CHGJ007") == "CHGJ"
    assert centre_of("CHUM-001") == "CHUM"
    assert centre_of("hgj_001") == "HGJ"


def test_leave_one_centre_out() -> None:
    splits = make_splits(IDS, method="centre")
    assert [s.description for s in splits] == [
        f"validation centre {c}" for c in ("CHGJ", "CHMR", "CHUM", "CHUS")
    ]
    for s in splits:
        centre = s.description.split()[-1]
        assert all(centre_of(p) == centre for p in s.val)
        assert all(centre_of(p) != centre for p in s.train)
        assert set(s.train) | set(s.val) == set(IDS)
        assert len(s.val) == 5


def test_centres_from_mapping_override_the_id() -> None:
    centres = {pid: ("A" if i < 10 else "B") for i, pid in enumerate(sorted(IDS))}
    splits = make_splits(IDS, method="centre", centres=centres)
    assert len(splits) == 2 and len(splits[0].val) == 10


def test_random_folds_partition_and_are_seeded() -> None:
    splits = make_splits(IDS, method="random", n_folds=4, seed=3)
    vals = [set(s.val) for s in splits]
    assert sorted(len(v) for v in vals) == [5, 5, 5, 5]
    assert set().union(*vals) == set(IDS)
    assert all(not (a & b) for i, a in enumerate(vals) for b in vals[i + 1 :])
    for s in splits:
        assert set(s.train) == set(IDS) - set(s.val)
    assert make_splits(IDS, method="random", n_folds=4, seed=3) == splits
    assert make_splits(IDS, method="random", n_folds=4, seed=4) != splits


def test_split_file_round_trip(tmp_path: Path) -> None:
    split = make_splits(IDS, method="random", n_folds=4, seed=0)[2]
    path = tmp_path / "split.json"
    save_split(split, path, seed=0)
    (loaded,) = load_split_file(path, IDS)
    assert loaded.train == split.train and loaded.val == split.val
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"folds": [{"val": IDS[:3]}, {"val": IDS[3:6], "train": IDS[6:]}]}))
    a, b = make_splits(IDS, method="file", split_file=folds)
    assert set(a.train) == set(IDS[3:]) and b.train == tuple(sorted(IDS[6:]))


def test_split_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_folds"):
        make_splits(IDS[:3], method="random", n_folds=4)
    with pytest.raises(ConfigError, match="centres"):
        make_splits(["CHGJ001", "CHGJ002"], method="centre")
    with pytest.raises(ConfigError, match="not found"):
        make_splits(IDS, method="file", split_file=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"folds": [{"val": ["NOPE001"]}]}))
    with pytest.raises(ConfigError, match="NOPE001"):
        make_splits(IDS, method="file", split_file=bad)
    overlap = tmp_path / "overlap.json"
    overlap.write_text(json.dumps({"val": IDS[:2], "train": IDS[1:]}))
    with pytest.raises(ConfigError, match="both"):
        make_splits(IDS, method="file", split_file=overlap)
