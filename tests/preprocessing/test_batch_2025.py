"""GTVp + GTVn layouts in preprocessing: the default box, label voxels outside it, bad input via the CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.data.synthetic import SyntheticConfig, write_synthetic_dataset
from hecktorseg.io import BBox, discover_cases
from hecktorseg.preprocessing import (
    GTVN_SIZE,
    PreprocessConfig,
    count_label_voxels,
    default_preprocess_config,
    preprocess_dataset,
    preprocess_images,
    read_manifest,
)

TINY = SyntheticConfig.tiny()
SMALL = ["--spacing", "6", "--size", "32,32,32"]


def _independent_outside(label_path: Path, box: BBox) -> dict[int, tuple[int, int]]:
    """Per label value: (voxels, voxels whose centre lies outside the box), with ITK's own transform."""
    image = sitk.ReadImage(str(label_path))
    array = sitk.GetArrayFromImage(image)
    out: dict[int, tuple[int, int]] = {}
    for z, y, x in np.argwhere(array > 0):
        p = image.TransformIndexToPhysicalPoint((int(x), int(y), int(z)))
        inside = box.x1 <= p[0] <= box.x2 and box.y1 <= p[1] <= box.y2 and box.z1 <= p[2] <= box.z2
        total, lost = out.get(int(array[z, y, x]), (0, 0))
        out[int(array[z, y, x])] = (total + 1, lost + (not inside))
    return out


def test_count_label_voxels_on_a_hand_made_label() -> None:
    array = np.zeros((4, 5, 6), np.uint8)  # (z, y, x); world = origin + index * spacing
    array[0, 0, 0] = 1  # world (10, 20, 30): inside
    array[3, 4, 5] = 1  # world (20, 28, 42): outside in x only (x2 = 19.9)
    array[1, 2, 3] = 2  # world (16, 24, 34): inside
    array[3, 0, 0] = 2  # world (10, 20, 42): on the top face: inside (closed box)
    array[2, 2, 2] = 2  # world (14, 24, 38): inside
    image = sitk.GetImageFromArray(array)
    image.SetOrigin((10.0, 20.0, 30.0))
    image.SetSpacing((2.0, 2.0, 4.0))
    total, outside = count_label_voxels(image, BBox(10.0, 19.9, 20.0, 30.0, 30.0, 42.0))
    assert total == {1: 2, 2: 3} and outside == {1: 1, 2: 0}


def test_default_box_per_layout() -> None:
    assert default_preprocess_config("2020").size == (144, 144, 144)
    assert default_preprocess_config(None) == PreprocessConfig()
    for layout in ("2022", "2025", "2026"):
        assert default_preprocess_config(layout).size == GTVN_SIZE == (144, 144, 176)
    assert default_preprocess_config("2025").extent_mm == (144.0, 144.0, 176.0)


def test_manifest_counts_label_voxels_outside_the_box(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = tmp_path / "raw"
    write_synthetic_dataset(raw, n_cases=3, edition="2025", seed=2, config=TINY)
    cases = discover_cases(raw)
    # a 72 mm box from PET: too small for the nodes, so some of them fall outside
    config = PreprocessConfig(spacing=(4.5, 4.5, 4.5), size=(32, 32, 32))
    with caplog.at_level(logging.WARNING, logger="hecktorseg"):
        report = preprocess_dataset(cases, tmp_path / "out", config)
    assert report.ok
    manifest = read_manifest(tmp_path / "out")
    lost_any = False
    for case in cases:
        entry = manifest.entries[case.patient_id]
        assert case.label_path is not None
        expected = _independent_outside(case.label_path, entry.bbox)
        assert entry.label_voxels == {v: n for v, (n, _) in expected.items()}
        assert entry.label_voxels_outside_box == {v: lost for v, (_, lost) in expected.items()}
        record = json.loads(
            (tmp_path / "out" / case.patient_id / f"{case.patient_id}_record.json").read_text()
        )
        assert record["label_voxels_outside_box"] == {
            str(v): lost for v, (_, lost) in sorted(expected.items())
        }
        assert record["clinical"]["CenterID"] == case.clinical["CenterID"]
        lost = {v: n for v, (_, n) in expected.items() if n}
        assert report.outside_box.get(case.patient_id, {}) == lost
        if lost:
            lost_any = True
            assert f"{case.patient_id}: label voxels outside the box" in caplog.text
    assert lost_any  # the small box really lost some voxels
    # the same cases in the default box lose nothing
    one = preprocess_images(
        sitk.ReadImage(str(cases[0].ct_path)),
        sitk.ReadImage(str(cases[0].pet_path)),
        sitk.ReadImage(str(cases[0].label_path)),
        default_preprocess_config("2025"),
    )
    assert one.label_voxels and not any(one.label_voxels_outside_box.values())


@pytest.mark.parametrize("edition", ["2025", "2026"])
def test_synth_then_preprocess_end_to_end(tmp_path: Path, edition: str) -> None:
    runner = CliRunner()
    data, pre = tmp_path / "d", tmp_path / "pre"
    made = runner.invoke(app, ["synth", str(data), "--edition", edition, "--tiny", "--cases", "3"])
    assert made.exit_code == 0, made.output
    extra = [] if edition == "2025" else SMALL  # 2025: the default box, 2026: a small one (fast)
    result = runner.invoke(app, ["preprocess", str(data), str(pre), *extra])
    assert result.exit_code == 0, result.output
    assert "3 done" in result.output
    manifest = read_manifest(pre)
    assert manifest.config.size == (GTVN_SIZE if edition == "2025" else (32, 32, 32))
    assert [e.centre for e in manifest.entries.values()] == ["1", "2", "3"]  # CenterID of the table
    assert manifest.label_values == {1, 2} and manifest.layouts == {edition}
    labels = set()
    for entry in manifest.entries.values():
        assert entry.label_path is not None
        labels |= set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(entry.label_path)))).tolist())
    assert labels == {0, 1, 2}


def _dataset(tmp_path: Path) -> Path:
    root = tmp_path / "d"
    write_synthetic_dataset(root, n_cases=3, edition="2025", seed=0, config=TINY)
    return root


def _preprocess(root: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["preprocess", str(root), str(out), *SMALL])
    return result.exit_code, result.output


def _failure_line(output: str, pid: str) -> str:
    """The patient's line in the CLI's closing "failed cases:" list."""
    tail = output.split("failed cases:", 1)[1]
    return next(line for line in tail.splitlines() if line.strip().startswith(f"{pid}:"))


def test_cli_label_value_three(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    path = root / "CHUP-002" / "CHUP-002.nii.gz"
    label = sitk.ReadImage(str(path))
    label[2, 2, 2] = 3
    sitk.WriteImage(label, str(path))
    code, output = _preprocess(root, tmp_path / "out")
    assert code == 1
    assert "2 done" in output and "1 failed" in output
    line = _failure_line(output, "CHUP-002")
    assert "CHUP-002.nii.gz" in line and "label values [3]" in line and "[0, 1, 2]" in line


def test_cli_patient_folder_without_pet(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    (root / "CHUS-003" / "CHUS-003__PT.nii.gz").unlink()
    code, output = _preprocess(root, tmp_path / "out")
    assert code == 1
    assert "2 done" in output and "1 failed" in output
    line = _failure_line(output, "CHUS-003")
    assert "CHUS-003__PT.nii.gz" in line and "not found" in line


def test_cli_clinical_table_with_duplicate_ids(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    table = root / "HECKTOR_2025_Training_Task_1.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join([*lines, lines[2]]) + "\n")
    code, output = _preprocess(root, tmp_path / "out")
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "HECKTOR_2025_Training_Task_1.csv" in errors[0] and "CHUP-002 twice" in errors[0]
    assert not (tmp_path / "out").exists()  # nothing written


def test_cli_clinical_table_without_centre_column(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    table = root / "HECKTOR_2025_Training_Task_1.csv"
    rows = [line.split(",") for line in table.read_text().splitlines()]
    table.write_text("\n".join(",".join(r[:1] + r[2:]) for r in rows) + "\n")
    code, output = _preprocess(root, tmp_path / "out")
    assert code == 0, output
    flat = "".join(output.split())  # the log handler wraps long lines
    assert "noCenterIDcolumn" in flat and "d/HECKTOR_2025_Training_Task_1.csv" in flat
    manifest = read_manifest(tmp_path / "out")
    assert [e.centre for e in manifest.entries.values()] == ["CHUM", "CHUP", "CHUS"]  # the id prefix


def test_an_edited_clinical_table_redoes_the_cases_it_changes(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    config = PreprocessConfig(spacing=(6.0, 6.0, 6.0), size=(32, 32, 32))
    first = preprocess_dataset(root, tmp_path / "out", config)
    assert len(first.done) == 3
    table = root / "HECKTOR_2025_Training_Task_1.csv"
    lines = table.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = "7"  # CHUM-001 moves to centre 7
    table.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    again = preprocess_dataset(root, tmp_path / "out", config)
    assert again.done == ("CHUM-001",) and again.skipped == ("CHUP-002", "CHUS-003")
    assert read_manifest(tmp_path / "out").entries["CHUM-001"].centre == "7"


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".mhd", ".nrrd"])
def test_missing_label_message_names_the_label_with_the_ct_suffix(tmp_path: Path, suffix: str) -> None:
    from hecktorseg.io import Case, Layout
    from hecktorseg.preprocessing import missing_labels

    def case(pid: str, labelled: bool) -> Case:
        folder = tmp_path / pid
        label = folder / f"{pid}{suffix}" if labelled else None
        return Case(
            pid,
            "X",
            folder / f"{pid}__CT{suffix}",
            folder / f"{pid}__PT{suffix}",
            label,
            layout=Layout.HECKTOR2025,
        )

    reasons = missing_labels([case("A-001", True), case("A-002", True), case("A-003", False)])
    assert list(reasons) == ["A-003"]
    assert str(tmp_path / "A-003" / f"A-003{suffix}") in reasons["A-003"]  # every image suffix of io


def test_cli_paper_preset_on_a_gtvn_layout_warns_of_the_short_box(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    runner = CliRunner()
    # the preset's 144 mm (4.5 mm x 32) instead of the layout's 176 mm: the flag that keeps the nodes
    short = ["--spacing", "4.5", "--size", "32"]
    result = runner.invoke(app, ["preprocess", str(root), str(tmp_path / "a"), "--preset", "paper", *short])
    assert result.exit_code == 0, result.output
    assert "--preset paper keeps the paper's box" in result.output and "--size 32,32,48" in result.output
    # the taller grid: no warning (192 mm >= 176 mm)
    result = runner.invoke(app, ["preprocess", str(root), str(tmp_path / "b"), "--preset", "paper", *SMALL])
    assert result.exit_code == 0 and "keeps the paper's box" not in result.output
    # a 2020 dataset (GTVp only): 144 mm is its default, nothing to warn of
    old = tmp_path / "old"
    write_synthetic_dataset(old, n_cases=1, seed=0, config=TINY)
    result = runner.invoke(app, ["preprocess", str(old), str(tmp_path / "c"), "--preset", "paper", *short])
    assert result.exit_code == 0 and "warning" not in result.output


def test_cli_size_help_names_the_gtvn_default() -> None:
    result = CliRunner().invoke(app, ["preprocess", "--help"], env={"COLUMNS": "400"})
    line = next(x for x in result.output.splitlines() if "--size" in x)
    assert "144, 144, 176" in line and str(GTVN_SIZE) == "(144, 144, 176)"
