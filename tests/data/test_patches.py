"""PatchSampler: patch contents against NumPy slicing, centring, over-sampling rate, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hecktorseg.data import PatchSampler
from hecktorseg.data.patches import patch_start
from hecktorseg.errors import ConfigError


def _sample(shape: tuple[int, int, int] = (20, 16, 12)) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    label = torch.zeros(1, *shape)
    label[0, 2:4, 3:5, 1:3] = 1  # a "primary" of 8 voxels near a corner
    label[0, 15, 12, 9] = 2  # a one-voxel "node"
    return {
        "image": torch.randn(2, *shape, generator=gen),
        "label": label,
        "mask": torch.ones(1, *shape),
    }


def test_the_patch_is_the_same_window_of_every_entry() -> None:
    sample = _sample()
    out = PatchSampler((8, 8, 8), foreground_p=0.0)(sample, torch.Generator().manual_seed(5))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "image": (2, 8, 8, 8),
        "label": (1, 8, 8, 8),
        "mask": (1, 8, 8, 8),
    }
    # find the window by matching the image channel 0 against NumPy slices of the input
    image = sample["image"].numpy()
    found = [
        (z, y, x)
        for z in range(20 - 7)
        for y in range(16 - 7)
        for x in range(12 - 7)
        if np.array_equal(image[0, z : z + 8, y : y + 8, x : x + 8], out["image"][0].numpy())
    ]
    assert len(found) == 1
    z, y, x = found[0]
    np.testing.assert_array_equal(out["image"][1].numpy(), image[1, z : z + 8, y : y + 8, x : x + 8])
    np.testing.assert_array_equal(
        out["label"].numpy(), sample["label"].numpy()[:, z : z + 8, y : y + 8, x : x + 8]
    )


def test_patch_start_centres_and_stays_inside() -> None:
    gen = torch.Generator().manual_seed(0)
    assert patch_start((20, 16, 12), (8, 8, 8), (10, 8, 6), gen) == (6, 4, 2)  # centred: c - s // 2
    assert patch_start((20, 16, 12), (8, 8, 8), (0, 15, 11), gen) == (0, 8, 4)  # clipped at both ends
    starts = {patch_start((10, 8, 8), (8, 8, 8), None, gen) for _ in range(200)}
    assert starts == {(0, 0, 0), (1, 0, 0), (2, 0, 0)}  # every position that fits, and only those


def test_foreground_patches_hold_a_drawn_class_at_the_rate_asked() -> None:
    sampler = PatchSampler((8, 8, 8), foreground_p=0.5)
    gen = torch.Generator().manual_seed(1)
    n, node, primary = 600, 0, 0
    for _ in range(n):
        label = sampler(_sample(), gen)["label"]
        node += int((label == 2).any())
        primary += int((label == 1).any())
    # a uniform 8³ patch of this 20x16x12 volume holds the node voxel (15, 12, 9) when its start
    # covers it on every axis: z starts 8..12 of 0..12, y 5..8 of 0..8, x 2..4 of 0..4. Half the
    # patches are uniform; the other half centre on a class drawn from {1, 2}: on the node in
    # half of those (a patch centred on the primary, near the other corner, never reaches it).
    uniform_node = (5 / 13) * (4 / 9) * (3 / 5)
    expected = 0.5 * uniform_node + 0.25
    assert abs(node / n - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    assert primary / n > 0.25  # at least the patches centred on the primary


def test_sample_without_foreground_gets_a_uniform_patch() -> None:
    sample = _sample()
    sample["label"].zero_()
    out = PatchSampler((8, 8, 8), foreground_p=1.0)(sample, torch.Generator().manual_seed(0))
    assert tuple(out["label"].shape) == (1, 8, 8, 8)


def test_same_generator_state_same_patch() -> None:
    a = PatchSampler((8, 8, 8), 0.5)(_sample(), torch.Generator().manual_seed(9))
    b = PatchSampler((8, 8, 8), 0.5)(_sample(), torch.Generator().manual_seed(9))
    assert torch.equal(a["image"], b["image"])


def test_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="three positive sides"):
        PatchSampler((8, 8))
    with pytest.raises(ConfigError, match="foreground_p"):
        PatchSampler((8, 8, 8), foreground_p=1.5)
    with pytest.raises(ConfigError, match="larger than the samples"):
        PatchSampler((32, 8, 8))(_sample(), torch.Generator())
