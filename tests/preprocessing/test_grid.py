"""The reference grid lands where the world says, whatever the input grids; the inverse recovers the mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from pre_phantoms import (
    CT_INSIDE,
    CT_OUTSIDE,
    FLIPPED,
    IDENTITY,
    PERMUTED,
    PERMUTED_FLIPPED,
    PET_INSIDE,
    PET_OUTSIDE,
    SPHERE_CENTRE,
    default_box,
    grid_centred_on,
    sphere_image,
    world_grid,
    write_case,
)

from hecktorseg.io import BBox, Geometry
from hecktorseg.preprocessing import (
    PreprocessConfig,
    pet_fov_mask,
    preprocess_case,
    reference_geometry,
    to_original_grid,
)


def centroid_world(image: sitk.Image, threshold: float) -> np.ndarray:
    """World centroid of the voxels above ``threshold``, via the image's own geometry."""
    geo = Geometry.from_image(image)
    zyx = np.argwhere(sitk.GetArrayViewFromImage(image) > threshold)
    assert zyx.size, "nothing above threshold"
    return geo.index_to_world(zyx[:, ::-1].astype(float)).mean(axis=0)


GRIDS = [
    # (CT spacing, CT size, CT direction, PET spacing, PET size, PET direction)
    ((2.0, 2.0, 3.0), (40, 40, 22), IDENTITY, (4.0, 4.0, 4.0), (22, 22, 18), IDENTITY),
    ((1.5, 1.5, 4.0), (52, 52, 18), FLIPPED, (3.5, 3.5, 3.0), (24, 24, 24), PERMUTED),
    ((2.5, 1.8, 2.0), (32, 44, 36), PERMUTED, (4.0, 3.0, 3.5), (20, 26, 22), FLIPPED),
    ((2.0, 3.0, 2.5), (40, 28, 32), PERMUTED_FLIPPED, (4.5, 4.5, 4.5), (18, 18, 18), PERMUTED_FLIPPED),
]


@pytest.mark.parametrize("grid", GRIDS, ids=["identity", "flipped-permuted", "permuted-flipped", "perm+flip"])
@pytest.mark.parametrize("label_mode", ["nearest", "linear"])
def test_sphere_lands_at_its_world_position(tmp_path: Path, grid: tuple, label_mode: str) -> None:
    ct_sp, ct_size, ct_dir, pet_sp, pet_size, pet_dir = grid
    ct_geo = grid_centred_on(SPHERE_CENTRE + np.array([4.0, -3.0, 2.0]), ct_size, ct_sp, ct_dir)
    pet_geo = grid_centred_on(SPHERE_CENTRE + np.array([-5.0, 6.0, -4.0]), pet_size, pet_sp, pet_dir)
    case = write_case(tmp_path, "CHGJ001", ct_geometry=ct_geo, pet_geometry=pet_geo, bbox=default_box())
    cfg = PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(24, 24, 24), label_interpolation=label_mode)
    out = preprocess_case(case, cfg)

    assert out.reference == reference_geometry(default_box(), cfg)
    assert out.reference.origin == (default_box().x1, default_box().y1, default_box().z1)
    for image in (out.ct, out.pet, out.label):
        assert image is not None
        assert Geometry.from_image(image).is_close(out.reference)
    half_voxel = 1.0  # half of the 2 mm output spacing
    for image, threshold in (
        (out.ct, (CT_INSIDE + CT_OUTSIDE) / 2),
        (out.pet, (PET_INSIDE + PET_OUTSIDE) / 2),
        (out.label, 0.5),
    ):
        err = np.abs(centroid_world(image, threshold) - SPHERE_CENTRE)
        assert np.all(err < half_voxel), err
    # the inputs themselves agree (the phantom is right, independently of the code under test)
    for geo in (ct_geo, pet_geo):
        inp = sphere_image(geo, 1.0, 0.0)
        assert np.all(np.abs(centroid_world(inp, 0.5) - SPHERE_CENTRE) < max(geo.spacing) / 2)
    assert out.box_source == "table"


def test_outside_field_of_view_is_filled(tmp_path: Path) -> None:
    ct_geo = grid_centred_on(SPHERE_CENTRE, (20, 20, 10), (2.0, 2.0, 3.0), IDENTITY)  # 40×40×30 mm
    pet_geo = grid_centred_on(SPHERE_CENTRE, (8, 8, 8), (4.0, 4.0, 4.0), FLIPPED)  # 32 mm
    case = write_case(tmp_path, "CHUM002", ct_geometry=ct_geo, pet_geometry=pet_geo, bbox=default_box(60.0))
    cfg = PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(30, 30, 30), ct_fill=-1024.0, pet_fill=0.0)
    out = preprocess_case(case, cfg)
    ct = sitk.GetArrayFromImage(out.ct)
    pet = sitk.GetArrayFromImage(out.pet)
    label = sitk.GetArrayFromImage(out.label)
    world = world_grid(out.reference)
    lo, hi = ct_geo.world_bounds()
    outside_ct = np.any((world < lo - 1e-6) | (world > hi + 1e-6), axis=-1)
    assert outside_ct.any() and (~outside_ct).any()
    assert np.all(ct[outside_ct] == -1024.0)
    assert np.all(label[outside_ct] == 0)
    assert np.all(ct[~outside_ct] >= CT_OUTSIDE - 1e-3)
    fov = pet_fov_mask(pet_geo, out.reference)
    plo, phi = pet_geo.world_bounds()
    expected_fov = np.all((world >= plo - 1e-6) & (world <= phi + 1e-6), axis=-1)
    np.testing.assert_array_equal(fov, expected_fov)
    assert np.all(pet[~fov] == 0.0)
    assert np.all(pet[fov] >= PET_OUTSIDE - 1e-4)
    # configurable fills
    out2 = preprocess_case(
        case, PreprocessConfig(spacing=(2.0,) * 3, size=(30,) * 3, ct_fill=-999.0, pet_fill=-1.0)
    )
    assert np.all(sitk.GetArrayFromImage(out2.ct)[outside_ct] == -999.0)
    assert np.all(sitk.GetArrayFromImage(out2.pet)[~fov] == -1.0)


@pytest.mark.parametrize("label_mode", ["nearest", "linear"])
@pytest.mark.parametrize("direction", [IDENTITY, FLIPPED, PERMUTED])
def test_inverse_mapping_recovers_the_mask(tmp_path: Path, label_mode: str, direction: tuple) -> None:
    # coarse slices (4 mm) and a 1 mm reference grid
    ct_geo = grid_centred_on(SPHERE_CENTRE, (36, 36, 14), (1.4, 1.4, 4.0), direction)
    pet_geo = grid_centred_on(SPHERE_CENTRE, (14, 14, 14), (4.0, 4.0, 4.0), IDENTITY)
    case = write_case(tmp_path, "CHUS003", ct_geometry=ct_geo, pet_geometry=pet_geo, bbox=default_box(40.0))
    cfg = PreprocessConfig(spacing=(1.0, 1.0, 1.0), size=(40, 40, 40), label_interpolation=label_mode)
    out = preprocess_case(case, cfg)
    assert out.label is not None
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(case.label_path))) > 0
    for kind, source in (("label", out.label), ("probability", sitk.Cast(out.label, sitk.sitkFloat32))):
        back = to_original_grid(source, out.reference, out.ct_geometry, kind=kind)  # type: ignore[arg-type]
        assert Geometry.from_image(back) == out.ct_geometry
        assert back.GetPixelID() == (sitk.sitkUInt8 if kind == "label" else sitk.sitkFloat32)
        mask = sitk.GetArrayFromImage(back) > 0.5
        dice = 2 * np.logical_and(mask, original).sum() / (mask.sum() + original.sum())
        assert dice >= 0.95, (kind, dice)
    # arrays are accepted too, and everything outside the box is 0
    prob = np.ones(out.reference.shape_zyx, dtype=np.float32)
    back = sitk.GetArrayFromImage(to_original_grid(prob, out.reference, out.ct_geometry, kind="probability"))
    world = world_grid(out.ct_geometry)
    lo, hi = out.reference.world_bounds()
    inside = np.all((world >= lo + 1e-6) & (world <= hi - 1e-6), axis=-1)
    assert np.all(back[~np.all((world >= lo - 1e-6) & (world <= hi + 1e-6), axis=-1)] == 0)
    assert np.allclose(back[inside], 1.0)


def test_linear_label_mode_keeps_label_values(tmp_path: Path) -> None:
    ct_geo = grid_centred_on(SPHERE_CENTRE, (30, 30, 12), (2.0, 2.0, 4.0), IDENTITY)
    pet_geo = grid_centred_on(SPHERE_CENTRE, (14, 14, 14), (4.0, 4.0, 4.0), IDENTITY)
    case = write_case(
        tmp_path, "CHUM-004", ct_geometry=ct_geo, pet_geometry=pet_geo, bbox=default_box(), label_value=2
    )
    for mode in ("nearest", "linear"):
        out = preprocess_case(
            case, PreprocessConfig(spacing=(2.0,) * 3, size=(24,) * 3, label_interpolation=mode)
        )
        assert out.label is not None and out.label.GetPixelID() == sitk.sitkUInt8
        assert set(np.unique(sitk.GetArrayFromImage(out.label))) == {0, 2}


def test_bspline_is_clamped_to_the_input_range(tmp_path: Path) -> None:
    ct_geo = grid_centred_on(SPHERE_CENTRE, (30, 30, 12), (2.0, 2.0, 4.0), IDENTITY)
    pet_geo = grid_centred_on(SPHERE_CENTRE, (14, 14, 14), (4.0, 4.0, 4.0), IDENTITY)
    case = write_case(tmp_path, "CHGJ005", ct_geometry=ct_geo, pet_geometry=pet_geo, bbox=default_box())
    base = PreprocessConfig(spacing=(1.5,) * 3, size=(32,) * 3, image_interpolation="bspline")
    out = preprocess_case(case, base)
    pet = sitk.GetArrayFromImage(out.pet)
    assert pet.max() <= PET_INSIDE + 1e-4 and pet.min() >= 0.0
    raw = preprocess_case(
        case,
        PreprocessConfig(
            spacing=(1.5,) * 3, size=(32,) * 3, image_interpolation="bspline", clamp_bspline=False
        ),
    )
    assert sitk.GetArrayFromImage(raw.pet).max() > PET_INSIDE  # cubic overshoot exists without the clamp
    err = np.abs(centroid_world(out.ct, (CT_INSIDE + CT_OUTSIDE) / 2) - SPHERE_CENTRE)
    assert np.all(err < 0.75)


def test_legacy_mode_rounds_the_corner_to_the_ct_voxels(tmp_path: Path) -> None:
    ct_geo = grid_centred_on(SPHERE_CENTRE, (30, 30, 12), (2.0, 2.0, 4.0), IDENTITY)
    pet_geo = grid_centred_on(SPHERE_CENTRE, (14, 14, 14), (4.0, 4.0, 4.0), IDENTITY)
    box = BBox.from_center(SPHERE_CENTRE, (70.0, 70.0, 70.0))  # bigger than the CT: padding shows
    case = write_case(tmp_path, "CHGJ006", ct_geometry=ct_geo, pet_geometry=pet_geo, bbox=box)
    cfg = PreprocessConfig(spacing=(2.0,) * 3, size=(40,) * 3, legacy=True)
    out = preprocess_case(case, cfg)
    # origin = the CT voxel nearest the box corner (clipped to the image), not the corner itself
    idx = np.clip(np.round(ct_geo.world_to_index(box.lower)), 0, None)
    np.testing.assert_allclose(out.reference.origin, ct_geo.index_to_world(idx), atol=1e-4)
    ct = sitk.GetArrayFromImage(out.ct)
    assert (ct == 0.0).any()  # paper-faithful CT padding is 0 HU
    assert not (ct == -1024.0).any()
    assert out.label is not None
    err = np.abs(centroid_world(out.label, 0.5) - SPHERE_CENTRE)
    assert np.all(err < 1.0)


def test_label_box_is_centred_on_the_label_and_given_boxes_win(tmp_path: Path) -> None:
    ct_geo = grid_centred_on(
        SPHERE_CENTRE + np.array([6.0, 0.0, -5.0]), (40, 40, 20), (2.0, 2.0, 3.0), FLIPPED
    )
    pet_geo = grid_centred_on(SPHERE_CENTRE, (20, 20, 20), (4.0, 4.0, 4.0), IDENTITY)
    case = write_case(tmp_path, "CHUS007", ct_geometry=ct_geo, pet_geometry=pet_geo)
    cfg = PreprocessConfig(spacing=(2.0,) * 3, size=(24,) * 3, box_source="label")
    out = preprocess_case(case, cfg)
    assert out.box_source == "label"
    np.testing.assert_allclose(out.bbox.center, SPHERE_CENTRE, atol=1.0)
    np.testing.assert_allclose(out.bbox.size, (48.0, 48.0, 48.0))
    given = BBox.from_center(SPHERE_CENTRE, (40.0, 40.0, 40.0))
    forced = preprocess_case(case, cfg, bbox=given)
    assert forced.box_source == "given" and forced.bbox == given


def test_to_original_grid_rejects_other_grids(tmp_path: Path) -> None:
    from hecktorseg.errors import GeometryError

    ref = Geometry(size=(8, 8, 8), spacing=(2.0, 2.0, 2.0))
    target = Geometry(size=(10, 10, 5), spacing=(1.5, 1.5, 3.0), origin=(1.0, 1.0, 1.0))
    with pytest.raises(GeometryError):
        to_original_grid(np.zeros((4, 4, 4), np.float32), ref, target, kind="probability")
    other = Geometry(size=(8, 8, 8), spacing=(1.0, 1.0, 1.0)).empty_image()
    with pytest.raises(GeometryError):
        to_original_grid(other, ref, target, kind="label")
    # a (1, z, y, x) channel array and a target image are accepted
    target_image = target.empty_image()
    back = to_original_grid(np.ones((1, 8, 8, 8), np.float32), ref, target_image, kind="label")
    assert Geometry.from_image(back) == target and back.GetPixelID() == sitk.sitkUInt8
