"""Augmentation on tensors: rotation and mirroring checked against NumPy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hecktorseg.data.augmentation import (
    Compose,
    RandomMirror,
    RandomRotation,
    affine_resample,
    rotation_matrix,
)


def _sample(shape: tuple[int, int, int] = (12, 12, 12), seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    ct = rng.uniform(-1000, 1000, shape).astype(np.float32)
    pet = rng.uniform(0, 10, shape).astype(np.float32)
    label = (rng.random(shape) > 0.7).astype(np.float32)
    return {
        "image": torch.from_numpy(np.stack([ct, pet])),
        "label": torch.from_numpy(label)[None],
        "mask": torch.ones(1, *shape),
    }


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize(("angle", "k"), [(90, 1), (-90, -1), (180, 2)])
def test_rotation_by_right_angles_equals_rot90(axis: int, angle: int, k: int) -> None:
    sample = _sample()
    angles = [0.0, 0.0, 0.0]
    angles[axis] = float(angle)
    out = affine_resample(sample, rotation_matrix(angles), image_fill=(-1024.0, 0.0))
    plane = tuple(a + 1 for a in range(3) if a != axis)  # skip the channel axis
    expected_image = np.rot90(sample["image"].numpy(), k=k, axes=plane)
    expected_label = np.rot90(sample["label"].numpy(), k=k, axes=plane)
    np.testing.assert_allclose(out["image"].numpy(), expected_image, atol=1e-2)
    np.testing.assert_array_equal(out["label"].numpy(), expected_label)


def test_identity_resample_is_exact() -> None:
    sample = _sample((8, 10, 12))
    out = affine_resample(sample, torch.eye(3, dtype=torch.float64))
    np.testing.assert_allclose(out["image"].numpy(), sample["image"].numpy(), atol=1e-2)
    np.testing.assert_array_equal(out["label"].numpy(), sample["label"].numpy())


def test_rotation_fills_ct_with_air_and_pet_with_zero() -> None:
    shape = (16, 16, 16)
    sample = {
        "image": torch.stack([torch.zeros(shape), torch.full(shape, 5.0)]),  # water and SUV 5
        "label": torch.zeros(1, *shape),
    }
    out = affine_resample(sample, rotation_matrix([45.0, 0.0, 0.0]), image_fill=(-1024.0, 0.0))
    corner_ct = out["image"][0, :, 0, 0]
    corner_pet = out["image"][1, :, 0, 0]
    assert torch.allclose(corner_ct, torch.full_like(corner_ct, -1024.0))
    assert torch.allclose(corner_pet, torch.zeros_like(corner_pet))
    # the centre stays inside the volume
    assert out["image"][0, 8, 8, 8].item() == pytest.approx(0.0, abs=1e-4)
    assert out["image"][1, 8, 8, 8].item() == pytest.approx(5.0, abs=1e-4)


def test_random_rotation_keeps_label_values() -> None:
    sample = _sample((16, 16, 16))
    sample["label"] = sample["label"] * 2  # labels {0, 2}
    rotation = RandomRotation(p=1.0, max_angle=44)
    for seed in range(5):
        out = rotation(sample, torch.Generator().manual_seed(seed))
        assert set(torch.unique(out["label"]).tolist()) <= {0.0, 2.0}
        assert out["image"].dtype == torch.float32
        assert out["image"].shape == sample["image"].shape


def test_rotation_angles_are_integers_within_range() -> None:
    rotation = RandomRotation(p=1.0, max_angle=44)
    for seed in range(20):
        matrix = rotation.sample_matrix(torch.Generator().manual_seed(seed))
        assert matrix is not None
        assert torch.allclose(matrix @ matrix.T, torch.eye(3, dtype=torch.float64), atol=1e-9)
        # trace = 1 + 2 cos(total angle) for a single-axis rotation; just check it is a proper rotation
        assert torch.linalg.det(matrix).item() == pytest.approx(1.0)


def test_rotation_probability_zero_is_identity() -> None:
    sample = _sample()
    out = RandomRotation(p=0.0)(sample, torch.Generator().manual_seed(0))
    assert out is sample


def test_mirror_equals_numpy_flip() -> None:
    sample = _sample((6, 7, 8))
    mirror = RandomMirror(p=1.0)
    seen = set()
    for seed in range(30):
        out = mirror(sample, torch.Generator().manual_seed(seed))
        matches = [
            axes
            for r in (1, 2, 3)
            for axes in itertools.combinations((1, 2, 3), r)
            if np.array_equal(out["image"].numpy(), np.flip(sample["image"].numpy(), axis=axes))
        ]
        assert len(matches) == 1
        axes = matches[0]
        np.testing.assert_array_equal(out["label"].numpy(), np.flip(sample["label"].numpy(), axis=axes))
        np.testing.assert_array_equal(out["mask"].numpy(), np.flip(sample["mask"].numpy(), axis=axes))
        seen.add(axes)
    assert len(seen) >= 4  # random subsets of the axes


def test_augmentation_is_reproducible_with_a_seed() -> None:
    sample = _sample((16, 16, 16))
    transform = Compose([RandomRotation(p=1.0), RandomMirror(p=1.0)])
    a = transform(sample, torch.Generator().manual_seed(123))
    b = transform(sample, torch.Generator().manual_seed(123))
    c = transform(sample, torch.Generator().manual_seed(124))
    for key in a:
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a["image"], c["image"])


def test_probability_half_applies_about_half_the_time() -> None:
    sample = _sample((4, 4, 4))
    mirror = RandomMirror(p=0.5)
    changed = sum(mirror(sample, torch.Generator().manual_seed(seed)) is not sample for seed in range(200))
    assert 70 < changed < 130


def test_zoom_extra_scales_about_the_centre() -> None:
    shape = (16, 16, 16)
    label = torch.zeros(1, *shape)
    label[:, 6:10, 6:10, 6:10] = 1
    sample = {"image": torch.zeros(2, *shape), "label": label}
    out = affine_resample(sample, torch.eye(3, dtype=torch.float64) * 2.0)
    assert out["label"].sum().item() == pytest.approx(8 * 64, rel=0.05)
    assert out["label"][0, 8, 8, 8].item() == 1.0
