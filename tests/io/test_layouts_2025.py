"""HECKTOR 2025/2026 layouts: detection, reading (each arrangement, test folders, every image suffix)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import SimpleITK as sitk

from hecktorseg.errors import DataError, LayoutError
from hecktorseg.evaluation import dataset as eval_dataset
from hecktorseg.io import (
    IMAGE_SUFFIXES,
    LABELS_GTVP_GTVN,
    LAYOUT_NAMES,
    LAYOUT_SPECS,
    Layout,
    allowed_labels,
    detect_layout,
    discover_cases,
    find_clinical_tables,
    layout_paths,
    layout_spec,
    parse_layout,
    validate_case,
)

TABLE_2025 = "HECKTOR_2025_Training_Task_1.csv"
TABLE_2026 = "HECKTOR_2026_Training_Task.csv"


def _pids(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def _to_imagestr(root: Path, *, split: str = "Tr", labels: bool = True) -> None:
    """Rearrange a 2025 Task 1 folder into the 2022-style imagesTr/labelsTr variant (2025 tables)."""
    images, label_dir = root / f"images{split}", root / f"labels{split}"
    images.mkdir()
    if labels:
        label_dir.mkdir()
    for pid in _pids(root):
        if pid.startswith(("images", "labels")):
            continue
        folder = root / pid
        for f in folder.iterdir():
            if "__" in f.name:
                f.rename(images / f.name)
            elif labels:
                f.rename(label_dir / f.name)
            else:
                f.unlink()
        folder.rmdir()
    table = root / TABLE_2025
    text = table.read_text()
    table.unlink()
    header, *rows = text.splitlines()
    names = header.split(",")
    keep = [i for i, n in enumerate(names) if n not in ("Treatment",)]
    (root / "hecktor2025_clinical_info_training.csv").write_text(
        "\n".join(",".join(r.split(",")[i] for i in keep) for r in [header, *rows]) + "\n"
    )
    (root / "hecktor2025_endpoint_training.csv").write_text(
        "PatientID,Relapse,RFS\n" + "".join(f"{r.split(',')[0]},1,400\n" for r in rows)
    )


def test_names_and_records_are_defined_once() -> None:
    assert set(LAYOUT_NAMES) == {"2020", "2021", "2022", "2025", "2026", "nnunet"}
    assert {spec.name for spec in LAYOUT_SPECS} == set(LAYOUT_NAMES)
    assert parse_layout("hecktor2025") is Layout.HECKTOR2025 and parse_layout(" 2026 ") is Layout.HECKTOR2026
    assert allowed_labels("2025") == allowed_labels("2026") == LABELS_GTVP_GTVN == frozenset({0, 1, 2})
    assert layout_spec("2025").has_nodes and not layout_spec("2020").has_nodes
    # evaluation uses the one definition of image suffixes
    assert eval_dataset.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert {".nii.gz", ".nii", ".mha", ".nrrd"} <= set(IMAGE_SUFFIXES)
    with pytest.raises(LayoutError, match="2025, 2026"):
        parse_layout("2024")


@pytest.mark.parametrize(("edition", "table"), [("2025", TABLE_2025), ("2026", TABLE_2026)])
def test_task1_folders_are_detected_and_read(
    make_dataset: Callable[..., Path], edition: str, table: str
) -> None:
    root = make_dataset(edition, n_cases=3)
    assert (root / table).is_file()
    assert detect_layout(root) is Layout(edition)
    cases = discover_cases(root, require_labels=True)
    assert [c.patient_id for c in cases] == ["CHUM-001", "CHUP-002", "CHUS-003"]
    for c in cases:
        folder = root / c.patient_id
        assert c.ct_path == folder / f"{c.patient_id}__CT.nii.gz"
        assert c.pet_path == folder / f"{c.patient_id}__PT.nii.gz"
        assert c.label_path == folder / f"{c.patient_id}.nii.gz"
        assert (c.ct_path, c.pet_path, c.label_path) == layout_paths(root, c.patient_id, edition)
        assert c.layout is Layout(edition)
        assert c.clinical["CenterID"] is not None
        validate_case(c)
    assert find_clinical_tables(root, edition) == [root / table]


def test_2026_folder_without_its_table_reads_as_2025_unless_forced(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2026", n_cases=2)
    (root / TABLE_2026).unlink()
    assert detect_layout(root) is Layout.HECKTOR2025
    cases = discover_cases(root, layout="2026")
    assert all(c.layout is Layout.HECKTOR2026 and not c.clinical for c in cases)


def test_2025_imagestr_variant_is_detected_and_joins_both_tables(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2025", n_cases=3)
    _to_imagestr(root)
    assert detect_layout(root) is Layout.HECKTOR2025
    cases = discover_cases(root, require_labels=True)
    assert [c.patient_id for c in cases] == ["CHUM-001", "CHUP-002", "CHUS-003"]
    c = cases[0]
    assert c.ct_path == root / "imagesTr" / "CHUM-001__CT.nii.gz"
    assert c.label_path == root / "labelsTr" / "CHUM-001.nii.gz"
    assert c.clinical["RFS"] == 400.0 and c.clinical["Relapse"] == 1.0  # the endpoint table
    assert "Age" in c.clinical and "Treatment" not in c.clinical  # the clinical-info table
    assert c.centre == "1"
    # without the 2025 tables the same folders are plain 2022
    for name in ("hecktor2025_clinical_info_training.csv", "hecktor2025_endpoint_training.csv"):
        (root / name).unlink()
    assert detect_layout(root) is Layout.HECKTOR2022


def test_test_folders_without_labels(make_dataset: Callable[..., Path]) -> None:
    # Task 1 test folder: patient folders with CT and PET only, no table
    root = make_dataset("2025", n_cases=2)
    for f in root.glob("*/*.nii.gz"):
        if "__" not in f.name:
            f.unlink()
    (root / TABLE_2025).unlink()
    assert detect_layout(root) is Layout.HECKTOR2025
    cases = discover_cases(root)
    assert len(cases) == 2 and all(c.label_path is None and c.centre in ("CHUM", "CHUP") for c in cases)
    with pytest.raises(DataError, match=r"CHUM-001/CHUM-001\.nii\.gz: patient CHUM-001: label map not found"):
        discover_cases(root, require_labels=True)
    # imagesTs variant with the 2025 tables beside it
    other = make_dataset("2025", n_cases=2)
    _to_imagestr(other, split="Ts", labels=False)
    assert detect_layout(other) is Layout.HECKTOR2025
    cases = discover_cases(other)
    assert [c.ct_path.parent.name for c in cases] == ["imagesTs", "imagesTs"]
    assert all(c.label_path is None for c in cases)
    with pytest.raises(DataError, match=r"labelsTs/CHUM-001\.nii\.gz: patient CHUM-001: label map not found"):
        discover_cases(other, require_labels=True)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
def test_every_image_suffix(make_dataset: Callable[..., Path], suffix: str) -> None:
    root = make_dataset("2025", n_cases=2)
    for f in sorted(root.glob("*/*.nii.gz")):
        image = sitk.ReadImage(str(f))
        target = f.with_name(f.name[: -len(".nii.gz")] + suffix)
        f.unlink()
        sitk.WriteImage(image, str(target))
    assert detect_layout(root) is Layout.HECKTOR2025
    cases = discover_cases(root, require_labels=True)
    for c in cases:
        assert c.ct_path.name == f"{c.patient_id}__CT{suffix}"
        assert c.label_path is not None and c.label_path.name == f"{c.patient_id}{suffix}"
        validate_case(c)


def test_patient_folder_without_pet_names_the_file(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2025", n_cases=2)
    (root / "CHUP-002" / "CHUP-002__PT.nii.gz").unlink()
    with pytest.raises(DataError, match=r"CHUP-002__PT\.nii\.gz.*PET image not found"):
        discover_cases(root)
    kept = {c.patient_id: c for c in discover_cases(root, strict=False)}
    assert kept["CHUP-002"].pet_path == root / "CHUP-002" / "CHUP-002__PT.nii.gz"
    assert kept["CHUM-001"].pet_path.is_file()


def test_label_value_three_names_the_file(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2025", n_cases=1)
    case = discover_cases(root)[0]
    assert case.label_path is not None
    label = sitk.ReadImage(str(case.label_path))
    label[1, 1, 1] = 3
    sitk.WriteImage(label, str(case.label_path))
    with pytest.raises(DataError, match=r"CHUM-001\.nii\.gz.*label values \[3\]"):
        validate_case(case)


def test_forced_layout_that_does_not_fit(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2025", n_cases=1)
    with pytest.raises(LayoutError, match="looks like layout 2025"):
        discover_cases(root, layout="2022")
    shutil.rmtree(root / "CHUM-001")
    with pytest.raises(LayoutError, match="no known dataset layout"):
        detect_layout(root)
