"""Dataset layouts: detection, discovery of what ``synth`` wrote, and bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk

from hecktorseg.data.synthetic import SyntheticConfig, make_phantom
from hecktorseg.errors import DataError, GeometryError, LayoutError
from hecktorseg.io import (
    LABELS_2022,
    LABELS_BINARY,
    BBox,
    Case,
    Layout,
    allowed_labels,
    centre_from_id,
    detect_layout,
    discover_cases,
    layout_paths,
    read_bbox_table,
    validate_case,
    write_bbox_table,
)

TINY = SyntheticConfig.tiny()

EDITIONS = ["2020", "2021", "2022", "nnunet"]


@pytest.mark.parametrize(
    ("pid", "centre"),
    [("CHGJ007", "CHGJ"), ("CHUM-001", "CHUM"), ("MDA-123", "MDA"), ("chus12", "CHUS"), ("007", "UNKNOWN")],
)
def test_centre_from_id(pid: str, centre: str) -> None:
    assert centre_from_id(pid) == centre


def test_allowed_labels_per_layout() -> None:
    assert allowed_labels("2020") == LABELS_BINARY == frozenset({0, 1})
    assert allowed_labels(Layout.HECKTOR2022) == LABELS_2022 == frozenset({0, 1, 2})
    assert allowed_labels("nnunet") is None


def _expected_files(root: Path, edition: str) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("edition", EDITIONS)
def test_discover_finds_exactly_what_synth_wrote(
    make_dataset: Callable[..., Path], edition: str, raw_nifti: Callable[[Path], Any]
) -> None:
    root = make_dataset(edition, n_cases=3, seed=4)
    assert detect_layout(root) is Layout(edition)
    cases = discover_cases(root)
    assert len(cases) == 3
    assert [c.patient_id for c in cases] == sorted(c.patient_id for c in cases)
    # every image file on disk belongs to exactly one case, and nothing else is there
    files = _expected_files(root, edition)
    image_files = {
        str(p.relative_to(root)) for c in cases for p in (c.ct_path, c.pet_path, c.label_path) if p
    }
    extra = {
        "2020": {"bbox.csv"},
        "2021": {"hecktor2021_bbox_training.csv"},
        "2022": set(),
        "nnunet": {"dataset.json"},
    }
    assert files == image_files | extra[edition]
    for case in cases:
        assert case.layout is Layout(edition)
        assert case.centre == centre_from_id(case.patient_id)
        assert (case.ct_path, case.pet_path, case.label_path) == layout_paths(root, case.patient_id, edition)
        validate_case(case)
        # geometry on disk, decoded independently, matches the phantom made in memory
        phantom = make_phantom(case.patient_id, seed=4, config=TINY, with_nodes=edition == "2022")
        ct_raw = raw_nifti(case.ct_path)
        assert ct_raw.shape_xyz == phantom.ct.GetSize()
        np.testing.assert_allclose(ct_raw.spacing, phantom.ct.GetSpacing(), rtol=1e-6)
        np.testing.assert_allclose(ct_raw.world_lps(np.zeros(3)), phantom.ct.GetOrigin(), atol=1e-3)
        pet_raw = raw_nifti(case.pet_path)
        pet_ref = phantom.ct if edition == "nnunet" else phantom.pet  # nnU-Net: PET resampled onto CT
        assert pet_raw.shape_xyz == pet_ref.GetSize()
        np.testing.assert_allclose(pet_raw.world_lps(np.zeros(3)), pet_ref.GetOrigin(), atol=1e-3)
        np.testing.assert_allclose(pet_raw.spacing, pet_ref.GetSpacing(), rtol=1e-6)
        np.testing.assert_array_equal(ct_raw.data_zyx, sitk.GetArrayViewFromImage(phantom.ct))
        # the tumour centroid in world mm, from raw label voxels, lies at the known tumour centre
        label_raw = raw_nifti(case.label_path)  # type: ignore[arg-type]
        kji = np.argwhere(label_raw.data_zyx == 1).astype(np.float64)
        centroid = label_raw.world_lps(kji[:, ::-1]).mean(axis=0)
        assert np.linalg.norm(centroid - np.asarray(phantom.tumour_center_mm)) < phantom.tumour_radius_mm
        if edition == "2022":
            assert set(np.unique(label_raw.data_zyx).tolist()) == {0, 1, 2}
        else:
            assert set(np.unique(label_raw.data_zyx).tolist()) == {0, 1}


def test_box_tables_of_2020_and_2021(make_dataset: Callable[..., Path]) -> None:
    r2020 = make_dataset("2020", n_cases=2, seed=1)
    r2021 = make_dataset("2021", n_cases=2, seed=1)
    c2020 = discover_cases(r2020)
    c2021 = discover_cases(r2021)
    for a, b in zip(c2020, c2021, strict=True):
        assert a.patient_id == b.patient_id
        assert a.bbox is not None and b.bbox is not None
        np.testing.assert_allclose(b.bbox.size, [144.0, 144.0, 144.0], atol=1e-9)  # 2021: exact
        assert np.all(np.abs(a.bbox.size - 144.0) <= TINY.box_jitter_mm + 1e-9)  # 2020: about 144
        assert not np.allclose(a.bbox.size, 144.0)
        np.testing.assert_allclose(a.bbox.center, b.bbox.center, atol=1e-9)
    assert all(c.bbox is None for c in discover_cases(make_dataset("2022", n_cases=1)))


def test_nnunet_dataset_json(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("nnunet", n_cases=2)
    data = json.loads((root / "dataset.json").read_text())
    assert data["channel_names"] == {"0": "CT", "1": "PT"}
    assert data["labels"] == {"background": 0, "GTVp": 1}
    assert data["numTraining"] == 2
    assert data["file_ending"] == ".nii.gz"
    case = discover_cases(root)[0]
    assert case.ct_path.name.endswith("_0000.nii.gz") and case.pet_path.name.endswith("_0001.nii.gz")
    ct = sitk.ReadImage(str(case.ct_path))
    pet = sitk.ReadImage(str(case.pet_path))
    assert ct.GetSize() == pet.GetSize() and np.allclose(ct.GetOrigin(), pet.GetOrigin())


def test_nnunet_channel_order_comes_from_dataset_json(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("nnunet", n_cases=1)
    data = json.loads((root / "dataset.json").read_text())
    data["channel_names"] = {"0": "PT", "1": "CT"}
    (root / "dataset.json").write_text(json.dumps(data))
    case = discover_cases(root)[0]
    assert case.ct_path.name.endswith("_0001.nii.gz") and case.pet_path.name.endswith("_0000.nii.gz")
    data["channel_names"] = {"0": "CT", "1": "MR"}
    (root / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(LayoutError, match="PET") as info:
        discover_cases(root)
    assert "dataset.json" in str(info.value)


def test_forced_layout(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2020", n_cases=1)
    assert [c.layout for c in discover_cases(root, layout="2020")] == [Layout.HECKTOR2020]
    with pytest.raises(LayoutError, match="looks like layout 2020") as info:
        discover_cases(root, layout="2021")
    assert str(root) in str(info.value)
    with pytest.raises(LayoutError, match="unknown dataset layout"):
        discover_cases(root, layout="2019")


def test_unknown_or_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(LayoutError, match="no known dataset layout") as info:
        detect_layout(tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(LayoutError, match="not found"):
        discover_cases(tmp_path / "nope")


def test_nnunet_without_dataset_json(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("nnunet", n_cases=1)
    (root / "dataset.json").unlink()
    with pytest.raises(LayoutError, match=r"dataset\.json is missing"):
        detect_layout(root)


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("modality", ["ct", "pet"])
def test_missing_modality_names_the_file(
    make_dataset: Callable[..., Path], edition: str, modality: str
) -> None:
    root = make_dataset(edition, n_cases=2)
    case = discover_cases(root)[1]
    path = case.ct_path if modality == "ct" else case.pet_path
    path.unlink()
    with pytest.raises(DataError, match="CT" if modality == "ct" else "PET") as info:
        discover_cases(root, layout=edition)
    message = str(info.value)
    assert case.patient_id in message and str(path) in message


@pytest.mark.parametrize("edition", EDITIONS)
def test_non_strict_discovery_keeps_a_case_with_a_missing_image(
    make_dataset: Callable[..., Path], edition: str
) -> None:
    root = make_dataset(edition, n_cases=3)
    before = discover_cases(root)
    before[1].pet_path.unlink()
    after = discover_cases(root, strict=False)
    assert [c.patient_id for c in after] == [c.patient_id for c in before]
    # the missing image keeps the path where it was expected, so readers name that file
    assert after[1].pet_path == before[1].pet_path and not after[1].pet_path.exists()
    assert after[0] == before[0] and after[2] == before[2]


def test_missing_label_only_fails_when_required(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2021", n_cases=2)
    case = discover_cases(root)[0]
    assert case.label_path is not None
    case.label_path.unlink()
    assert discover_cases(root)[0].label_path is None
    with pytest.raises(DataError, match="label") as info:
        discover_cases(root, require_labels=True)
    assert str(case.label_path) in str(info.value)


def test_explicit_box_table_and_missing_row(make_dataset: Callable[..., Path], tmp_path: Path) -> None:
    root = make_dataset("2022", n_cases=2)
    cases = discover_cases(root)
    table = tmp_path / "boxes.csv"
    box = BBox.from_center((0.0, 0.0, -200.0), (144.0, 144.0, 144.0))
    write_bbox_table(table, {cases[0].patient_id: box, cases[1].patient_id: box})
    assert [c.bbox for c in discover_cases(root, bbox_table=table)] == [box, box]
    write_bbox_table(table, {cases[0].patient_id: box})
    with pytest.raises(DataError, match=f"{cases[1].patient_id} has no row") as info:
        discover_cases(root, bbox_table=table)
    assert str(table) in str(info.value)


def test_bbox_table_in_parent_folder(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2020", n_cases=1)
    nested = root / "hecktor_nii"
    nested.mkdir()
    for sub in [p for p in root.iterdir() if p.is_dir() and p != nested]:
        shutil.move(str(sub), str(nested / sub.name))
    cases = discover_cases(nested)
    assert cases[0].bbox == read_bbox_table(root / "bbox.csv")[cases[0].patient_id]


# -- validate_case: bad images ------------------------------------------------------------------
def _first(make_dataset: Callable[..., Path], edition: str = "2020") -> Case:
    return discover_cases(make_dataset(edition, n_cases=1))[0]


@pytest.mark.parametrize("compress", [True, False])
def test_unreadable_image(make_dataset: Callable[..., Path], compress: bool) -> None:
    case = discover_cases(make_dataset("2020", n_cases=1, compress=compress))[0]
    case.ct_path.write_bytes(b"this is not an image at all")
    with pytest.raises(DataError, match=r"cannot (read|decompress)") as info:
        validate_case(case)
    assert str(case.ct_path) in str(info.value)


@pytest.mark.parametrize("compress", [True, False])
def test_truncated_image(make_dataset: Callable[..., Path], compress: bool) -> None:
    # ITK itself reads truncated NIfTI files silently (zero-filled): hecktorseg must not
    case = discover_cases(make_dataset("2020", n_cases=1, compress=compress))[0]
    assert case.pet_path.name.endswith(".nii.gz" if compress else ".nii")
    data = case.pet_path.read_bytes()
    case.pet_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"truncated|decompress") as info:
        validate_case(case)
    assert str(case.pet_path) in str(info.value)
    assert "re-export" in str(info.value)


def test_two_d_image(make_dataset: Callable[..., Path]) -> None:
    case = _first(make_dataset)
    sitk.WriteImage(sitk.Image([16, 16], sitk.sitkFloat32), str(case.ct_path))
    with pytest.raises(DataError, match="2-D") as info:
        validate_case(case)
    assert str(case.ct_path) in str(info.value)


def test_nan_image(make_dataset: Callable[..., Path]) -> None:
    case = _first(make_dataset)
    pet = sitk.ReadImage(str(case.pet_path))
    array = sitk.GetArrayFromImage(pet)
    array[:] = np.nan
    bad = sitk.GetImageFromArray(array)
    bad.CopyInformation(pet)
    sitk.WriteImage(bad, str(case.pet_path))
    with pytest.raises(DataError, match="NaN") as info:
        validate_case(case)
    assert str(case.pet_path) in str(info.value)


@pytest.mark.parametrize(
    ("edition", "value", "ok"), [("2020", 2, False), ("2022", 2, True), ("2022", 3, False)]
)
def test_label_values_outside_the_allowed_set(
    make_dataset: Callable[..., Path], edition: str, value: int, ok: bool
) -> None:
    case = _first(make_dataset, edition)
    assert case.label_path is not None
    label = sitk.ReadImage(str(case.label_path))
    array = sitk.GetArrayFromImage(label)
    array[0, 0, 0] = value
    bad = sitk.GetImageFromArray(array)
    bad.CopyInformation(label)
    sitk.WriteImage(bad, str(case.label_path))
    if ok:
        validate_case(case)
        return
    with pytest.raises(DataError, match=rf"label values \[{value}\]") as info:
        validate_case(case)
    assert str(case.label_path) in str(info.value)
    validate_case(case, allowed_labels=range(10))  # an explicit set overrides the layout's


def test_label_off_the_ct_grid(make_dataset: Callable[..., Path]) -> None:
    case = _first(make_dataset)
    assert case.label_path is not None
    label = sitk.ReadImage(str(case.label_path))
    label.SetSpacing([2 * s for s in label.GetSpacing()])
    sitk.WriteImage(label, str(case.label_path))
    with pytest.raises(GeometryError, match="CT grid") as info:
        validate_case(case)
    assert str(case.label_path) in str(info.value)


def test_pet_not_overlapping_ct(make_dataset: Callable[..., Path]) -> None:
    case = _first(make_dataset)
    pet = sitk.ReadImage(str(case.pet_path))
    pet.SetOrigin([o + 5000.0 for o in pet.GetOrigin()])
    sitk.WriteImage(pet, str(case.pet_path))
    with pytest.raises(GeometryError, match="does not overlap") as info:
        validate_case(case)
    assert str(case.pet_path) in str(info.value)


def test_box_outside_ct(make_dataset: Callable[..., Path]) -> None:
    case = _first(make_dataset)
    far = Case(
        patient_id=case.patient_id,
        centre=case.centre,
        ct_path=case.ct_path,
        pet_path=case.pet_path,
        label_path=case.label_path,
        bbox=BBox.from_center((9000.0, 0.0, 0.0), (144.0, 144.0, 144.0)),
        layout=case.layout,
    )
    with pytest.raises(GeometryError, match="outside the CT"):
        validate_case(far)


def test_2022_test_split_folders(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2022", n_cases=2)
    (root / "imagesTr").rename(root / "imagesTs")
    (root / "labelsTr").rename(root / "labelsTs")
    cases = discover_cases(root)
    assert [c.layout for c in cases] == [Layout.HECKTOR2022] * 2
    assert all(c.ct_path.parent.name == "imagesTs" and c.label_path is not None for c in cases)


def test_2021_training_and_testing_tables_are_merged(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2021", n_cases=2)
    training = root / "hecktor2021_bbox_training.csv"
    boxes = read_bbox_table(training)
    first, second = sorted(boxes)
    write_bbox_table(training, {first: boxes[first]})
    testing = root / "hecktor2021_bbox_testing.csv"
    write_bbox_table(testing, {second: boxes[second]})
    assert {c.patient_id: c.bbox for c in discover_cases(root)} == boxes
    write_bbox_table(testing, boxes)
    with pytest.raises(DataError, match="two tables") as info:
        discover_cases(root)
    assert str(testing) in str(info.value)


def test_nnunet_labels_come_from_dataset_json(make_dataset: Callable[..., Path]) -> None:
    case = _first(make_dataset, "nnunet")
    assert case.label_path is not None
    label = sitk.ReadImage(str(case.label_path))
    array = sitk.GetArrayFromImage(label)
    array[0, 0, 0] = 2
    bad = sitk.GetImageFromArray(array)
    bad.CopyInformation(label)
    sitk.WriteImage(bad, str(case.label_path))
    with pytest.raises(DataError, match=r"label values \[2\]"):
        validate_case(case)
    root = case.label_path.parent.parent
    data = json.loads((root / "dataset.json").read_text())
    data["labels"]["GTVn"] = 2
    (root / "dataset.json").write_text(json.dumps(data))
    validate_case(case)


def test_points_to_the_dataset_sub_folder(make_dataset: Callable[..., Path]) -> None:
    root = make_dataset("2021", n_cases=1)
    top = root.parent / "release"
    top.mkdir()
    root.rename(top / "hecktor2021_train")
    with pytest.raises(LayoutError, match="looks like layout 2021; pass that folder") as info:
        discover_cases(top)
    assert str(top / "hecktor2021_train") in str(info.value)
