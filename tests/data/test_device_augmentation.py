"""hecktorseg.data.device_augmentation: batched rotation, mirroring and normalisation (run here on the CPU).

The code is device-independent (the same torch operations on whatever device the batch lies), so
these CPU tests cover the CUDA path's logic; only its speed needs a GPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from hecktorseg.data import Compose, RandomMirror, RandomRotation, SequentialRotation, affine_resample
from hecktorseg.data.device_augmentation import (
    Affine,
    BatchAugmenter,
    Flip,
    draw_plan,
    normalize_batch,
    supports_batching,
)
from hecktorseg.preprocessing import PreprocessConfig, stack_channels

SIZE = (20, 24, 28)
OURS = Compose([RandomRotation(0.5, 44, scale_p=0.3), RandomMirror(0.5)])
PAPER = Compose([SequentialRotation(0.5, 44, image_fill=(0.0, 0.0)), RandomMirror(0.5, axes=(0, 3))])


def _sample(seed: int) -> dict[str, torch.Tensor]:
    """A smooth raw [CT HU, PET SUV] volume with a ball label and a PET field of view (slab)."""
    g = torch.Generator().manual_seed(seed)
    z, y, x = torch.meshgrid(*(torch.linspace(-1, 1, n) for n in SIZE), indexing="ij")
    centre = torch.rand(3, generator=g) * 0.6 - 0.3
    r2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2
    ct = 400 * torch.sin(3 * z + 2 * y) * torch.cos(2 * x) - 200
    pet = 5 * torch.exp(-r2 / 0.1) + 0.5 + 0.2 * y
    label = (r2 < 0.12).float()
    fov = (z.abs() < 0.8).float()
    return {"image": torch.stack([ct, pet]), "label": label[None], "mask": fov[None]}


def _batch(seeds: list[int]) -> dict[str, torch.Tensor]:
    samples = [_sample(s) for s in seeds]
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def test_fixed_steps_match_the_per_sample_cpu_transforms() -> None:
    """Batched resampling and flips give what affine_resample / torch.flip give one sample at a time."""
    from hecktorseg.data import rotation_matrix

    rot_a = rotation_matrix([17.0, 0.0, -30.0])
    rot_b = rotation_matrix([0.0, 41.0, 0.0]) * 1.08  # rotation with a zoom
    fill = (-1024.0, 0.0)
    plans = [[Affine(rot_a, fill), Flip((0, 2))], [], [Flip((1,)), Affine(rot_b, fill)]]
    batch = _batch([0, 1, 2])
    before = {k: v.clone() for k, v in batch.items()}
    out = BatchAugmenter(OURS, PreprocessConfig()).augment(batch, plans)
    for key in batch:  # the input batch is left as it was
        assert torch.equal(batch[key], before[key])
    for i, plan in enumerate(plans):
        expected = {k: v[i] for k, v in batch.items()}
        for step in plan:
            if isinstance(step, Affine):
                expected = affine_resample(expected, step.matrix, image_fill=step.fill)
            else:
                expected = {k: torch.flip(v, dims=[a + 1 for a in step.axes]) for k, v in expected.items()}
        torch.testing.assert_close(out["image"][i], expected["image"], atol=1e-3, rtol=1e-5)
        for key in ("label", "mask"):
            mismatch = (out[key][i] != expected[key]).float().mean()
            assert mismatch <= 1e-3  # nearest neighbour: at most a voxel on an exact tie
    assert torch.equal(out["image"][1], batch["image"][1])  # no steps: untouched


def test_a_quarter_turn_matches_numpy_rot90() -> None:
    """An independent reference: 90 degrees about z is np.rot90 over (y, x) (cube, so no fill)."""
    from hecktorseg.data import rotation_matrix

    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 2, 16, 16, 16, generator=g) * 100
    label = (torch.rand(1, 1, 16, 16, 16, generator=g) > 0.5).float()
    out = BatchAugmenter(None, PreprocessConfig()).augment(
        {"image": image, "label": label}, [[Affine(rotation_matrix([90.0, 0.0, 0.0]), (0.0, 0.0))]]
    )
    expected = np.rot90(image[0].numpy(), k=1, axes=(2, 3))
    np.testing.assert_allclose(out["image"][0].numpy(), expected, atol=1e-3)
    np.testing.assert_array_equal(out["label"][0].numpy(), np.rot90(label[0].numpy(), k=1, axes=(2, 3)))


@pytest.mark.parametrize("transform", [OURS, PAPER], ids=["ours", "paper"])
def test_same_draws_and_same_result_as_the_cpu_pipeline(transform: Compose) -> None:
    """For a sample's seed, the batched path gives the CPU pipeline's augmented, normalised input."""
    config = PreprocessConfig()
    seeds = list(range(100, 112))
    batch = _batch(list(range(len(seeds))))
    out = BatchAugmenter(transform, config)(batch, seeds)
    moved_any = 0
    for i, seed in enumerate(seeds):
        sample = transform({k: v[i] for k, v in batch.items()}, torch.Generator().manual_seed(seed))
        moved_any += not torch.equal(sample["image"], batch["image"][i])
        fov = sample["mask"][0].numpy() > 0.5
        expected = stack_channels(sample["image"][0].numpy(), sample["image"][1].numpy(), config, pet_fov=fov)
        np.testing.assert_allclose(out["image"][i].numpy(), expected, atol=2e-3)
        assert (out["label"][i] != sample["label"]).float().mean() <= 1e-3
    assert moved_any >= 4  # the seeds really augmented most samples


def test_the_same_seeds_give_the_same_batch_and_others_differ() -> None:
    augmenter = BatchAugmenter(OURS, PreprocessConfig())
    batch = _batch([0, 1, 2, 3])
    a = augmenter(batch, [5, 6, 7, 8])
    b = augmenter(batch, [5, 6, 7, 8])
    c = augmenter(batch, [9, 10, 11, 12])
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])


def _angles(matrix: torch.Tensor) -> list[float]:
    """Rotation angle (degrees) about the one axis a single-axis rotation matrix turns."""
    m = matrix.numpy()
    for axis in range(3):
        b, c = [i for i in range(3) if i != axis]
        if abs(m[axis, axis] - 1) < 1e-12:
            return [math.degrees(math.atan2(m[c, b], m[b, b]))]
    raise AssertionError("not a single-axis rotation")


def test_paper_draws_follow_the_papers_distributions() -> None:
    """4000 draws (fixed seeds, so deterministic) against the paper's probabilities.

    Bounds: a frequency of n = 4000 Bernoulli draws has a standard deviation of at most
    0.5 / sqrt(4000) = 0.0079; 0.04 is 5 of them. The angle test is a chi-square test of
    uniformity over 1..44 degrees, required at p > 1e-3 (at a fixed seed it either passes
    always or never; a wrong distribution, e.g. 0..45 or a sign bias, gives p < 1e-10).
    """
    n = 4000
    flipped = rotated = 0
    magnitudes: list[int] = []
    signs = 0
    for seed in range(n):
        plan = draw_plan(PAPER, torch.Generator().manual_seed(seed))
        flipped += any(isinstance(step, Flip) for step in plan)
        affines = [step for step in plan if isinstance(step, Affine)]
        rotated += bool(affines)
        for step in affines:
            angle = _angles(step.matrix)[0]
            magnitudes.append(round(abs(angle)))
            signs += angle > 0
    assert abs(flipped / n - 0.375) < 0.04  # p 0.5, then 1-3 axes drawn with p 3/4
    p_all_zero = (1 / 45 + 1 / 45**2 + 1 / 45**3) / 3
    assert abs(rotated / n - 0.5 * (1 - p_all_zero)) < 0.04
    counts = np.bincount(magnitudes, minlength=45)[1:]
    assert counts.shape == (44,) and max(magnitudes) <= 44
    assert stats.chisquare(counts).pvalue > 1e-3
    assert abs(signs / len(magnitudes) - 0.5) < 0.04


def test_our_draws_follow_our_distributions() -> None:
    """Composed rotation: p 0.5 (x P(some angle non-zero)); zoom p 0.3; mirroring p 0.5 (1-3 axes)."""
    n = 4000
    affine = flips = 0
    for seed in range(n):
        plan = draw_plan(OURS, torch.Generator().manual_seed(seed))
        affine += any(isinstance(step, Affine) for step in plan)
        flips += any(isinstance(step, Flip) for step in plan)
    assert abs(flips / n - 0.5) < 0.04
    p_rotation = 0.5 * (1 - (1 / 89 + 1 / 89**2 + 1 / 89**3) / 3)
    assert abs(affine / n - (1 - (1 - p_rotation) * (1 - 0.3))) < 0.04


def test_unsupported_transforms_are_refused() -> None:
    def crop(sample: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        return sample

    assert supports_batching(OURS) and supports_batching(None)
    assert not supports_batching(Compose([crop]))
    with pytest.raises(TypeError, match="augment_device='cpu'"):
        BatchAugmenter(Compose([crop]), PreprocessConfig())


def test_normalize_batch_matches_stack_channels_and_falls_back_without_fov() -> None:
    config = PreprocessConfig()
    batch = _batch([0, 1])
    fov = batch["mask"][:, 0] > 0.5
    fov[1] = False  # the second sample's field of view rotated away
    out = normalize_batch(batch["image"], config, fov)
    first = stack_channels(batch["image"][0, 0].numpy(), batch["image"][0, 1].numpy(), config, fov[0].numpy())
    np.testing.assert_allclose(out[0].numpy(), first, atol=1e-5)
    pet = batch["image"][1, 1].double().numpy()
    np.testing.assert_allclose(out[1, 1].numpy(), (pet - pet.mean()) / (pet.std() + 1e-3), atol=1e-5)
    all_stats = normalize_batch(batch["image"], PreprocessConfig(pet_stats="all"), fov)
    np.testing.assert_allclose(
        all_stats[0, 1].numpy(),
        stack_channels(
            batch["image"][0, 0].numpy(), batch["image"][0, 1].numpy(), PreprocessConfig(pet_stats="all")
        )[1],
        atol=1e-5,
    )


@pytest.mark.gpu
@pytest.mark.parametrize("transform", [OURS, PAPER], ids=["ours", "paper"])
def test_on_cuda_the_batch_is_the_cpu_batch(transform: Compose) -> None:
    """The same seeds on a real GPU give the CPU's batch up to interpolation rounding."""
    augmenter = BatchAugmenter(transform, PreprocessConfig())
    seeds = list(range(8))
    raw = _batch(seeds)
    cpu = augmenter(raw, seeds)
    gpu = augmenter({k: v.to("cuda") for k, v in raw.items()}, seeds)
    assert gpu["image"].device.type == "cuda"
    np.testing.assert_allclose(gpu["image"].cpu().numpy(), cpu["image"].numpy(), atol=1e-3)
    # nearest-neighbour labels: a voxel may fall on the other side of a half-voxel tie
    assert (gpu["label"].cpu() == cpu["label"]).float().mean() > 0.999
