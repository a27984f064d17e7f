"""The paper's augmentation: sampled parameters against the stated probabilities, and one volume test.

Facts: rotation with p = 0.5 about 1-3 distinct axes (count uniform), one after the other, integer
angles 0-44 degrees with a random sign; mirroring with p = 0.5 over 0-3 axes (count uniform), so a
sample is flipped at all with probability 0.375.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from hecktorseg.data.augmentation import RandomMirror, SequentialRotation

DRAWS = 4000


def _generators() -> list[torch.Generator]:
    return [torch.Generator().manual_seed(1000 + i) for i in range(DRAWS)]


def test_paper_mirroring_flips_with_probability_0375() -> None:
    mirror = RandomMirror(0.5, axes=(0, 3))
    draws = [mirror.sample_axes(g) for g in _generators()]
    flipped = sum(1 for axes in draws if axes)
    assert abs(flipped / DRAWS - 0.375) <= 0.02
    counts = Counter(len(axes) for axes in draws if axes)
    assert set(counts) == {1, 2, 3}
    for n in (1, 2, 3):  # given a flip, 1, 2 or 3 axes equally often (1/3 each)
        assert abs(counts[n] / flipped - 1 / 3) <= 0.04
    for axes in draws:
        assert len(set(axes)) == len(axes) and set(axes) <= {0, 1, 2}
    per_axis = Counter(a for axes in draws for a in axes)
    assert set(per_axis) == {0, 1, 2}


def test_default_mirroring_is_unchanged() -> None:
    mirror = RandomMirror(0.5)
    flipped = sum(1 for g in _generators() if mirror.sample_axes(g))
    assert abs(flipped / DRAWS - 0.5) <= 0.02


def test_paper_rotation_parameters_follow_the_stated_distribution() -> None:
    rotation = SequentialRotation(0.5, 44, axes=(1, 3))
    draws = [rotation.sample_steps(g) for g in _generators()]
    rotated = [steps for steps in draws if steps is not None]
    assert abs(len(rotated) / DRAWS - 0.5) <= 0.02
    counts = Counter(len(steps) for steps in rotated)
    assert set(counts) == {1, 2, 3}
    for n in (1, 2, 3):
        assert abs(counts[n] / len(rotated) - 1 / 3) <= 0.03
    angles = [angle for steps in rotated for _, angle in steps]
    assert all(isinstance(a, int) and -44 <= a <= 44 for a in angles)
    assert {-44, 44, 0} <= set(angles)  # both extremes and zero are reachable
    positive = sum(1 for a in angles if a > 0)
    negative = sum(1 for a in angles if a < 0)
    assert abs(positive - negative) / len(angles) <= 0.05  # random sign
    # magnitudes uniform over 0..44: mean 22
    assert abs(float(np.mean(np.abs(angles))) - 22.0) <= 0.6
    for steps in rotated:
        axes = [axis for axis, _ in steps]
        assert len(set(axes)) == len(axes) and set(axes) <= {0, 1, 2}
    # the order is random: every axis comes first sometimes in two-axis rotations
    firsts = Counter(steps[0][0] for steps in rotated if len(steps) >= 2)
    assert set(firsts) == {0, 1, 2}


def test_sequential_rotation_applies_one_axis_after_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 90-degree steps equal np.rot90 applied in that order (exact on a cube)."""
    rng = np.random.default_rng(0)
    image = rng.uniform(-500, 500, (2, 8, 8, 8)).astype(np.float32)
    label = (rng.random((1, 8, 8, 8)) > 0.6).astype(np.float32)
    rotation = SequentialRotation(1.0, 44)
    monkeypatch.setattr(rotation, "sample_steps", lambda generator: [(2, 90), (0, 90)])
    out = rotation({"image": torch.from_numpy(image), "label": torch.from_numpy(label)}, torch.Generator())
    expected = np.rot90(np.rot90(image, 1, axes=(1, 2)), 1, axes=(2, 3))  # about x (plane z,y), then z
    np.testing.assert_allclose(out["image"].numpy(), expected, atol=1e-3)
    np.testing.assert_array_equal(
        out["label"].numpy(), np.rot90(np.rot90(label, 1, axes=(1, 2)), 1, axes=(2, 3))
    )


def test_sequential_rotation_fills_with_zero_and_keeps_the_mask_binary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shape = (16, 16, 16)
    ct = np.full(shape, 100.0, dtype=np.float32)  # 100 HU everywhere
    pet = np.full(shape, 3.0, dtype=np.float32)
    label = np.zeros(shape, dtype=np.float32)
    label[4:12, 5:11, 3:13] = 1.0
    sample = {
        "image": torch.from_numpy(np.stack([ct, pet])),
        "label": torch.from_numpy(label)[None],
        "mask": torch.ones(1, *shape),
    }
    rotation = SequentialRotation(1.0, 44)  # the paper's fill: 0 for every channel
    monkeypatch.setattr(rotation, "sample_steps", lambda generator: [(0, 37), (1, -29)])
    out = rotation(sample, torch.Generator())
    image = out["image"].numpy()
    assert image[0, 0, 0, 0] == 0.0 and image[1, 0, 0, 0] == 0.0  # corners rotated in: 0 (0 HU), not -1024
    assert image[0, 8, 8, 8] == pytest.approx(100.0)  # the centre keeps its value
    assert image[0].min() >= 0.0 and image[0].max() <= 100.0 + 1e-3  # linear: no value outside [fill, 100]
    assert 0.0 < float((image[0] == 0).mean()) < 0.5
    assert set(np.unique(out["label"].numpy())) == {0.0, 1.0}  # nearest neighbour: still binary
    assert set(np.unique(out["mask"].numpy())) <= {0.0, 1.0}
    assert abs(float(out["label"].sum()) - float(label.sum())) / float(label.sum()) < 0.15
