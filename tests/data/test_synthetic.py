"""Synthetic phantoms: anatomy, intensities, physical agreement of CT/PET/mask, determinism, writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from hecktorseg.config import from_dict, to_dict
from hecktorseg.data.synthetic import (
    Phantom,
    SyntheticConfig,
    make_phantom,
    synthetic_patient_ids,
    write_synthetic_dataset,
)
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.io import discover_cases

TINY = SyntheticConfig.tiny()


def _world_points(image: sitk.Image, kji: np.ndarray) -> np.ndarray:
    """World coordinates of (z, y, x) voxel indices, straight from SimpleITK (not hecktorseg.io)."""
    return np.array(
        [image.TransformContinuousIndexToPhysicalPoint([float(i), float(j), float(k)]) for k, j, i in kji]
    )


def _world_of_array_point(image: sitk.Image, zyx: tuple[float, float, float]) -> np.ndarray:
    k, j, i = zyx
    return np.array(image.TransformContinuousIndexToPhysicalPoint([float(i), float(j), float(k)]))


@pytest.fixture(scope="module")
def phantom() -> Phantom:
    """A phantom at the default (HECKTOR-like) resolution."""
    return make_phantom("CHGJ001", seed=3)


def test_default_grids_look_like_hecktor(phantom: Phantom) -> None:
    ct, pet, label = phantom.ct, phantom.pet, phantom.label
    assert ct.GetSize() == (128, 128, 72) and pet.GetSize() == (64, 64, 80)
    np.testing.assert_allclose(ct.GetSpacing(), (1.953125, 1.953125, 3.27))
    np.testing.assert_allclose(pet.GetSpacing(), (4.0, 4.0, 3.0))
    assert ct.GetPixelID() == sitk.sitkFloat32 and pet.GetPixelID() == sitk.sitkFloat32
    assert label.GetPixelID() == sitk.sitkUInt8
    # the label lives on the CT grid; the PET has its own origin and extent
    assert label.GetSize() == ct.GetSize() and np.allclose(label.GetOrigin(), ct.GetOrigin())
    assert not np.allclose(pet.GetOrigin(), ct.GetOrigin(), atol=1.0)
    assert ct.GetDirection() == pet.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    fov = np.asarray(ct.GetSize()) * np.asarray(ct.GetSpacing())
    assert np.all(fov[:2] > 200.0) and fov[2] > 200.0


def test_ct_intensities(phantom: Phantom) -> None:
    ct = sitk.GetArrayFromImage(phantom.ct)
    label = sitk.GetArrayFromImage(phantom.label)
    corner = ct[:, :5, :5]  # outside the body: air
    assert abs(float(np.median(corner)) + 1000.0) < 5.0
    soft = ct[(ct > -50) & (ct < 150) & (label == 0)]
    assert 30.0 < float(np.median(soft)) < 50.0  # soft tissue around 40 HU
    assert (ct >= 700).sum() > 1000  # bone: skull, mandible, spine
    assert ct.max() >= 1000
    tumour = ct[label == 1]
    assert 10.0 < float(tumour.mean()) - float(np.median(soft)) < 30.0  # slightly denser on CT
    assert np.all(ct >= -1024) and np.array_equal(ct, np.rint(ct))


def test_pet_intensities_and_tumour_uptake(phantom: Phantom) -> None:
    pet = sitk.GetArrayFromImage(phantom.pet)
    assert pet.min() >= 0.0
    assert float(np.median(pet[:, :3, :3])) == pytest.approx(0.0, abs=0.05)  # air
    # brain: the hottest large organ, SUV about 8-12 at the top of the head
    k, j, i = np.rint(
        phantom.pet.TransformPhysicalPointToContinuousIndex(phantom.brain_center_mm)[::-1]
    ).astype(int)
    assert 6.0 < float(np.median(pet[k - 2 : k + 3, j - 2 : j + 3, i - 2 : i + 3])) < 13.0
    # body background around 1
    body = (pet > 0.5) & (pet < 1.6)
    assert 0.8 < float(np.median(pet[body])) < 1.2
    # below the brain, the PET peak lies at the tumour (independent: voxel index -> world via SimpleITK)
    below = np.zeros_like(pet, dtype=bool)
    for kk in range(pet.shape[0]):
        z = _world_of_array_point(phantom.pet, (kk, 0, 0))[2]
        below[kk] = z < phantom.brain_center_mm[2] - 65.0
    peak = np.unravel_index(np.argmax(np.where(below, pet, -1.0)), pet.shape)
    peak_world = _world_of_array_point(phantom.pet, tuple(float(p) for p in peak))  # type: ignore[arg-type]
    assert np.linalg.norm(peak_world - np.asarray(phantom.tumour_center_mm)) < 2.0 * phantom.tumour_radius_mm
    assert pet[peak] > 3.0


def test_tumour_mask_agrees_with_anatomy(phantom: Phantom) -> None:
    label = sitk.GetArrayFromImage(phantom.label)
    assert set(np.unique(label).tolist()) == {0, 1}
    kji = np.argwhere(label == 1)
    world = _world_points(phantom.label, kji)
    centre = world.mean(axis=0)
    assert np.linalg.norm(centre - np.asarray(phantom.tumour_center_mm)) < phantom.tumour_radius_mm
    # one connected, irregular blob of plausible size (radius 9-16 mm: a few mL)
    _, n_components = ndimage.label(label == 1)
    assert n_components == 1
    volume_ml = len(kji) * np.prod(phantom.label.GetSpacing()) / 1000.0
    assert 1.0 < volume_ml < 40.0
    # inside the box, which is about 144 mm on each side
    assert np.all(world >= phantom.bbox.lower) and np.all(world <= phantom.bbox.upper)
    assert np.all(np.abs(phantom.bbox.size - 144.0) <= 3.0)
    # the tumour sits below the brain
    assert phantom.tumour_center_mm[2] < phantom.brain_center_mm[2] - 40.0


def test_nodes_are_label_two() -> None:
    ph = make_phantom("CHUM-001", seed=0, with_nodes=True)
    label = sitk.GetArrayFromImage(ph.label)
    assert set(np.unique(label).tolist()) == {0, 1, 2}
    assert 1 <= len(ph.node_centers_mm) <= 3
    # each node centre is inside a label-2 region, lateral to the tumour
    for node in ph.node_centers_mm:
        k, j, i = np.rint(ph.label.TransformPhysicalPointToContinuousIndex(node)[::-1]).astype(int)
        assert label[k, j, i] == 2
        assert abs(node[0] - ph.tumour_center_mm[0]) > 10.0
    assert make_phantom("CHUM-001", seed=0).node_centers_mm == ()


def test_deterministic_per_patient_and_seed() -> None:
    a = make_phantom("CHUS004", seed=7, config=TINY)
    b = make_phantom("CHUS004", seed=7, config=TINY)
    for x, y in ((a.ct, b.ct), (a.pet, b.pet), (a.label, b.label)):
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(x), sitk.GetArrayViewFromImage(y))
        assert x.GetOrigin() == y.GetOrigin()
    assert a.bbox == b.bbox and a.tumour_center_mm == b.tumour_center_mm
    c = make_phantom("CHUS004", seed=8, config=TINY)
    d = make_phantom("CHUS005", seed=7, config=TINY)
    assert c.tumour_center_mm != a.tumour_center_mm and d.tumour_center_mm != a.tumour_center_mm
    assert c.ct.GetOrigin() != a.ct.GetOrigin()


def test_tiny_config_keeps_the_field_of_view() -> None:
    ph = make_phantom("CHMR002", seed=1, config=TINY)
    assert ph.ct.GetSize() == (48, 48, 24) and ph.pet.GetSize() == (32, 32, 30)
    assert sitk.GetArrayViewFromImage(ph.label).sum() > 0
    default_fov = np.asarray(SyntheticConfig().ct_size) * np.asarray(SyntheticConfig().ct_spacing)
    tiny_fov = np.asarray(TINY.ct_size) * np.asarray(TINY.ct_spacing)
    np.testing.assert_allclose(tiny_fov, default_fov, rtol=0.05)


def test_rotated_grids_keep_physical_agreement() -> None:
    cfg = SyntheticConfig.tiny(rotation_deg=20.0)
    ph = make_phantom("CHGJ009", seed=2, config=cfg)
    assert ph.ct.GetDirection() != (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    label = sitk.GetArrayFromImage(ph.label)
    world = _world_points(ph.label, np.argwhere(label == 1))
    assert np.linalg.norm(world.mean(axis=0) - np.asarray(ph.tumour_center_mm)) < ph.tumour_radius_mm
    # the PET, resampled by SimpleITK onto the CT grid, is hot where the mask is
    pet_on_ct = sitk.GetArrayFromImage(sitk.Resample(ph.pet, ph.ct, sitk.Transform(), sitk.sitkLinear, 0.0))
    assert pet_on_ct[label == 1].mean() > 3.0 * np.median(pet_on_ct[(pet_on_ct > 0.5) & (label == 0)])


def test_config_validation_and_round_trip() -> None:
    assert from_dict(SyntheticConfig, to_dict(TINY)) == TINY
    with pytest.raises(ConfigError, match="tumour_suv"):
        SyntheticConfig(tumour_suv=(20.0, 5.0))
    with pytest.raises(ConfigError, match="ct_size"):
        SyntheticConfig(ct_size=(2, 48, 48))
    with pytest.raises(ConfigError, match="unknown field"):
        from_dict(SyntheticConfig, {"ct_sise": [1, 2, 3]})


def test_patient_ids() -> None:
    assert synthetic_patient_ids(5, "2020") == ["CHGJ001", "CHMR002", "CHUM003", "CHUS004", "CHGJ005"]
    assert synthetic_patient_ids(5, "2021")[-1] == "CHUP005"
    assert synthetic_patient_ids(2, "2022") == ["CHUM-001", "CHUP-002"]


def test_write_refuses_non_empty_folder_and_reports_progress(tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    cases = write_synthetic_dataset(
        tmp_path / "d", n_cases=2, edition="2021", seed=0, config=TINY, progress=lambda *a: seen.append(a)
    )
    assert seen == [(1, 2, "CHGJ001"), (2, 2, "CHMR002")]
    assert cases == discover_cases(tmp_path / "d")
    with pytest.raises(DataError, match="not empty") as info:
        write_synthetic_dataset(tmp_path / "d", n_cases=1, config=TINY)
    assert str(tmp_path / "d") in str(info.value)
    again = write_synthetic_dataset(tmp_path / "d", n_cases=2, edition="2021", config=TINY, force=True)
    assert again == cases
    with pytest.raises(ConfigError, match="unknown dataset edition"):
        write_synthetic_dataset(tmp_path / "e", edition="2019", config=TINY)


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = write_synthetic_dataset(tmp_path / "a", n_cases=1, edition="2022", seed=5, config=TINY)
    b = write_synthetic_dataset(tmp_path / "b", n_cases=1, edition="2022", seed=5, config=TINY)
    for x, y in zip(a, b, strict=True):
        for p, q in ((x.ct_path, y.ct_path), (x.pet_path, y.pet_path), (x.label_path, y.label_path)):
            assert p is not None and q is not None
            ia, ib = sitk.ReadImage(str(p)), sitk.ReadImage(str(q))
            np.testing.assert_array_equal(sitk.GetArrayViewFromImage(ia), sitk.GetArrayViewFromImage(ib))


@pytest.mark.parametrize("seed", [0, 1])
def test_box_lies_inside_ct_and_pet(seed: int) -> None:
    for pid in synthetic_patient_ids(9, "2022"):
        ph = make_phantom(pid, seed=seed, config=TINY, with_nodes=True)
        for image in (ph.ct, ph.pet):
            size = np.asarray(image.GetSize(), dtype=float)
            lo = np.asarray(image.TransformContinuousIndexToPhysicalPoint([-0.5, -0.5, -0.5]))
            hi = np.asarray(image.TransformContinuousIndexToPhysicalPoint((size - 0.5).tolist()))
            assert np.all(lo <= ph.bbox.lower) and np.all(hi >= ph.bbox.upper), pid
