"""HECKTOR 2025/2026 phantoms: GTVp + 0–4 FDG-avid nodes at neck levels II–IV, clinical tables."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from hecktorseg.data.synthetic import (
    NODE_COUNT_PROBABILITIES,
    Phantom,
    SyntheticConfig,
    make_phantom,
    synthetic_patient_ids,
    write_synthetic_dataset,
)
from hecktorseg.io import discover_cases, layout_spec

TINY = SyntheticConfig.tiny()
SKULL_BASE_BELOW_BRAIN_CENTRE_MM = 55.0  # the phantom brain's half-height


def _phantoms(n: int, seed: int = 0) -> list[Phantom]:
    return [
        make_phantom(f"CHUM-{i:03d}", seed=seed, config=TINY, with_nodes=True, node_model="neck_levels")
        for i in range(n)
    ]


def _value_at(image: sitk.Image, point: tuple[float, float, float]) -> float:
    ix, iy, iz = image.TransformPhysicalPointToIndex(point)
    return float(sitk.GetArrayViewFromImage(image)[iz, iy, ix])


def test_node_count_distribution() -> None:
    counts = Counter(len(p.node_centers_mm) for p in _phantoms(80))
    assert set(counts) == {0, 1, 2, 3, 4}  # every count from 0 to 4 occurs, nothing else
    for k, p in enumerate(NODE_COUNT_PROBABILITIES):
        assert abs(counts[k] / 80 - p) < 0.12, (k, counts)


def test_nodes_lie_at_neck_levels_lateral_to_and_below_the_primary() -> None:
    n_nodes = 0
    for ph in _phantoms(30):
        label = sitk.GetArrayViewFromImage(ph.label)
        midline_x = ph.brain_center_mm[0]
        skull_base_z = ph.brain_center_mm[2] - SKULL_BASE_BELOW_BRAIN_CENTRE_MM
        primary_u = abs(ph.tumour_center_mm[0] - midline_x)
        for centre, radii in zip(ph.node_centers_mm, ph.node_radii_mm, strict=True):
            n_nodes += 1
            u = abs(centre[0] - midline_x)
            assert 0.9 * 24.0 - 1e-6 <= u <= 1.1 * 44.0 + 1e-6  # lateral of the midline (× body scale)
            assert u > primary_u + 5.0  # more lateral than the primary
            assert centre[2] <= ph.tumour_center_mm[2] - 5.0 + 1e-6  # below the primary
            assert 5.0 - 1e-6 <= skull_base_z - centre[2] <= 130.0 + 1e-6  # levels II–IV
            assert _value_at(ph.label, centre) == 2
            # FDG-avid: the PET at the node's centre is well above the soft-tissue SUV (1)
            assert _value_at(ph.pet, centre) > 1.8
            # the grids reach below the node (the lowest slice holds no label)
            lowest = ph.ct.GetOrigin()[2]
            assert centre[2] - max(radii) > lowest
        assert not label[0].any()
    assert n_nodes > 20


def test_dataset_label_values_and_the_special_patients(tmp_path: Path) -> None:
    cases = write_synthetic_dataset(tmp_path / "d", n_cases=5, edition="2025", seed=1, config=TINY)
    values = {}
    for c in cases:
        assert c.label_path is not None
        values[c.patient_id] = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(c.label_path)))))
    assert all(v <= {0, 1, 2} for v in values.values())
    ids = [c.patient_id for c in cases]
    assert values[ids[1]] == {0, 1}  # the second patient: a GTVp and no node
    assert values[ids[2]] == {0, 2}  # the third: nodes only, no GTVp
    assert all(1 in values[pid] for pid in ids if pid != ids[2])
    assert discover_cases(tmp_path / "d") == cases


@pytest.mark.parametrize("edition", ["2025", "2026"])
def test_clinical_table_has_the_editions_columns_and_missing_values(tmp_path: Path, edition: str) -> None:
    root = tmp_path / edition
    cases = write_synthetic_dataset(root, n_cases=12, edition=edition, seed=0, config=TINY)
    spec = layout_spec(edition)
    assert spec.synth.clinical_table is not None
    with (root / spec.synth.clinical_table).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == spec.synth.clinical_columns
    assert [r["PatientID"] for r in rows] == sorted(c.patient_id for c in cases)
    assert all(r["CenterID"] and r["Age"] and r["Gender"] in ("M", "F") for r in rows)
    empty = sum(1 for r in rows for v in r.values() if v == "")
    assert empty >= 3  # some values are missing …
    assert all(38 <= float(r["Age"]) <= 84 for r in rows)
    by_id = {c.patient_id: c for c in cases}
    for r in rows:
        info = by_id[r["PatientID"]].clinical
        for column, text in r.items():
            if column != "PatientID":
                assert (info[column] is None) == (text == "")  # … and stay missing in the API
    if edition == "2026":
        n_stage = {r["PatientID"]: r["N-stage"] for r in rows}
        t_stage = {r["PatientID"]: r["T-stage"] for r in rows}
        ids = synthetic_patient_ids(12, edition)  # in the order they were made
        assert n_stage[ids[1]] == "N0" and t_stage[ids[2]] == "T0"


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = files(_written(tmp_path / "a", seed=3))
    b = files(_written(tmp_path / "b", seed=3))
    c = files(_written(tmp_path / "c", seed=4))
    assert a == b
    assert a.keys() == c.keys() and a != c


def _written(root: Path, seed: int) -> Path:
    write_synthetic_dataset(root, n_cases=3, edition="2026", seed=seed, config=TINY)
    return root


def test_old_editions_draw_no_neck_level_nodes() -> None:
    # 2022 keeps its lateral nodes at the primary's height; 2020 has none
    ph = make_phantom("CHUM-001", seed=0, config=TINY, with_nodes=True)
    assert ph.node_centers_mm and ph.has_primary
    assert all(abs(c[2] - ph.tumour_center_mm[2]) < 60 for c in ph.node_centers_mm)
    assert not make_phantom("CHGJ001", seed=0, config=TINY).node_centers_mm
