"""Normalisation against the formulas; boxes from PET (brain), the label and the table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pre_phantoms import FLIPPED, IDENTITY, grid_centred_on, simple_case, world_grid

from hecktorseg.errors import ConfigError, DataError, GeometryError
from hecktorseg.io import BBox, Geometry, array_to_image
from hecktorseg.preprocessing import (
    PreprocessConfig,
    box_from_label,
    box_from_pet,
    choose_box,
    find_brain,
    normalize_ct,
    normalize_pet,
    pet_fov_mask,
    preprocess_case,
    reference_geometry,
    stack_channels,
)


def test_normalize_ct_formula() -> None:
    ct = np.array([-3000.0, -1024.0, -500.0, 0.0, 40.0, 1024.0, 3071.0])
    np.testing.assert_allclose(normalize_ct(ct), np.clip(ct, -1024, 1024) / 1024, rtol=1e-6)
    np.testing.assert_allclose(normalize_ct(ct, (-200.0, 400.0)), np.clip(ct, -200, 400) / 400, rtol=1e-6)
    assert normalize_ct(ct).dtype == np.float32


def test_normalize_pet_formula_and_mask() -> None:
    rng = np.random.default_rng(0)
    pet = rng.gamma(2.0, 1.5, size=(6, 7, 8)).astype(np.float32)
    out = normalize_pet(pet)
    np.testing.assert_allclose(out, (pet - pet.mean()) / (pet.std() + 1e-3), rtol=1e-5, atol=1e-6)
    mask = np.zeros(pet.shape, dtype=bool)
    mask[1:5, 2:6, 1:7] = True
    out = normalize_pet(pet, mask)
    sel = pet[mask].astype(np.float64)
    np.testing.assert_allclose(out, (pet - sel.mean()) / (sel.std() + 1e-3), rtol=1e-5, atol=1e-6)
    assert out.dtype == np.float32
    with pytest.raises(DataError):
        normalize_pet(pet, np.zeros(pet.shape, dtype=bool))
    with pytest.raises(DataError):
        normalize_pet(pet, np.ones((2, 2, 2), dtype=bool))


def test_stack_channels_uses_the_fov_only_in_fov_mode() -> None:
    rng = np.random.default_rng(1)
    ct = rng.normal(0, 500, size=(4, 5, 6)).astype(np.float32)
    pet = rng.gamma(2.0, 1.0, size=(4, 5, 6)).astype(np.float32)
    fov = np.zeros(ct.shape, dtype=bool)
    fov[:, :, :3] = True
    pet[~fov] = 0.0
    x = stack_channels(ct, pet, PreprocessConfig(), pet_fov=fov)
    assert x.shape == (2, 4, 5, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], normalize_ct(ct))
    np.testing.assert_allclose(x[1], normalize_pet(pet, fov))
    y = stack_channels(ct, pet, PreprocessConfig(pet_stats="all"), pet_fov=fov)
    np.testing.assert_allclose(y[1], normalize_pet(pet))
    assert not np.allclose(x[1], y[1])


def test_preprocessed_case_network_input(tmp_path: Path, small_config: PreprocessConfig) -> None:
    out = preprocess_case(simple_case(tmp_path, "CHGJ010"), small_config)
    x = out.network_input(small_config)
    fov = pet_fov_mask(out.pet_geometry, out.reference)
    np.testing.assert_allclose(x[1], normalize_pet(sitk.GetArrayFromImage(out.pet), fov), rtol=1e-5)
    np.testing.assert_array_equal(out.pet_fov, fov)


def test_reference_geometry() -> None:
    box = BBox(-10.5, 133.5, 20.0, 164.0, -300.25, -156.25)
    geo = reference_geometry(box, PreprocessConfig(spacing=(1.0, 1.0, 2.0), size=(144, 144, 72)))
    assert geo.origin == (-10.5, 20.0, -300.25)
    assert geo.spacing == (1.0, 1.0, 2.0) and geo.size == (144, 144, 72)
    assert geo.direction == IDENTITY
    assert reference_geometry(box).size == (144, 144, 144)


def whole_body_pet() -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """PET 160×160×240 mm at 4 mm: brain ellipsoid at the top, tumour and heart below."""
    geo = grid_centred_on((0.0, 0.0, 0.0), (40, 40, 60), (4.0, 4.0, 4.0), FLIPPED)
    w = world_grid(geo)
    brain_c, brain_r = np.array([6.0, 12.0, 80.0]), np.array([55.0, 65.0, 30.0])
    pet = np.full(geo.shape_zyx, 0.8, dtype=np.float32)
    pet[(((w - brain_c) / brain_r) ** 2).sum(-1) <= 1] = 8.0
    pet[np.linalg.norm(w - [0.0, -30.0, 10.0], axis=-1) <= 12] = 12.0  # tumour: bright but small
    pet[np.linalg.norm(w - [20.0, 0.0, -80.0], axis=-1) <= 35] = 6.0  # heart: big, low in the scan
    return array_to_image(pet, geo), brain_c, brain_r


def test_box_from_pet_follows_the_brain() -> None:
    pet, brain_c, brain_r = whole_body_pet()
    cfg = PreprocessConfig()
    lower, upper = find_brain(pet, cfg)
    assert np.all(np.abs(lower - (brain_c - brain_r)) < 8.0), lower
    assert np.all(np.abs(upper - (brain_c + brain_r)) < 8.0), upper
    box = box_from_pet(pet, cfg, patient_id="CHUM-001")
    np.testing.assert_allclose(box.size, (144.0, 144.0, 144.0))
    centre = (lower + upper) / 2
    assert box.center[0] == pytest.approx(centre[0])
    assert box.center[1] == pytest.approx(centre[1] - 30.0)
    assert box.z2 == pytest.approx(lower[2] + 30.0)
    shifted = box_from_pet(
        pet, PreprocessConfig(box_offset_mm=(5.0, 0.0, 10.0), box_size_mm=(100.0, 120.0, 90.0))
    )
    np.testing.assert_allclose(shifted.size, (100.0, 120.0, 90.0))
    assert shifted.center[0] == pytest.approx(centre[0] + 5.0)
    assert shifted.z2 == pytest.approx(lower[2] + 10.0)


def test_box_from_pet_without_brain_names_the_patient() -> None:
    geo = Geometry(size=(10, 10, 10), spacing=(4.0, 4.0, 4.0))
    flat = array_to_image(np.ones(geo.shape_zyx, dtype=np.float32), geo)
    with pytest.raises(GeometryError, match="CHUP-007"):
        box_from_pet(flat, PreprocessConfig(), patient_id="CHUP-007")


def test_box_from_label_and_choose_box() -> None:
    geo = grid_centred_on((10.0, 20.0, 30.0), (20, 20, 20), (2.0, 2.0, 2.0), IDENTITY)
    w = world_grid(geo)
    label = array_to_image((np.linalg.norm(w - [14.0, 18.0, 33.0], axis=-1) <= 6).astype(np.uint8), geo)
    box = box_from_label(label, PreprocessConfig(spacing=(2.0,) * 3, size=(24,) * 3))
    np.testing.assert_allclose(box.center, [14.0, 18.0, 33.0], atol=0.5)
    np.testing.assert_allclose(box.size, [48.0] * 3)
    empty = array_to_image(np.zeros(geo.shape_zyx, dtype=np.uint8), geo)
    with pytest.raises(DataError, match="empty"):
        box_from_label(empty, PreprocessConfig(), patient_id="X")
    pet, _, _ = whole_body_pet()
    table = BBox(0, 144, 0, 144, 0, 144)
    assert choose_box(PreprocessConfig(), pet=pet, table_bbox=table) == (table, "table")
    assert choose_box(PreprocessConfig(), pet=pet)[1] == "pet"
    assert choose_box(PreprocessConfig(box_source="pet"), pet=pet, table_bbox=table)[1] == "pet"
    assert choose_box(PreprocessConfig(box_source="label"), pet=pet, label=label)[1] == "label"
    with pytest.raises(GeometryError, match="CHGJ099"):
        choose_box(PreprocessConfig(box_source="table"), pet=pet, patient_id="CHGJ099")
    with pytest.raises(DataError, match="label"):
        choose_box(PreprocessConfig(box_source="label"), pet=pet, patient_id="CHGJ099")


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        PreprocessConfig(spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ConfigError):
        PreprocessConfig(ct_clip=(100.0, -100.0))
    with pytest.raises(ConfigError):
        PreprocessConfig(brain_search_fraction=0.0)
    assert PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(8, 8, 8)).extent_mm == (16.0, 16.0, 16.0)
