"""Training-time augmentation on tensors (torch ops only), seeded by an explicit generator.

The paper's augmentation (:class:`SequentialRotation` then :class:`RandomMirror` with
``axes=(0, 3)``) is a random rotation with p = 0.5 — 1–3 distinct random axes, rotated
one after the other (one interpolation per axis), each by an integer angle drawn from
0–44° with a random sign; linear interpolation for images, nearest neighbour for the
mask; outside filled with 0 — followed by random mirroring: with p = 0.5 a random subset
of 0–3 axes (the number drawn uniformly from 0, 1, 2, 3) is flipped, so a sample is
flipped at all with probability 0.375.

hecktorseg's default (:class:`RandomRotation` then :class:`RandomMirror`) composes the
per-axis rotations into one interpolation (angles uniform over −44…44), fills CT with
air (−1024 HU) and mirrors over 1–3 axes with p = 0.5.

Transforms act on a *sample*: a dict of tensors

- ``"image"``: float32 ``(C, z, y, x)`` in **raw units** (CT in HU, PET in SUV) — the
  rotation is applied *before* intensity normalisation, exactly as in the paper, so
  the area rotated in from outside the volume is filled with a per-channel value
  (air, −1024 HU, for CT and 0 SUV for PET; not 0 HU = water);
- ``"label"``: float32 ``(1, z, y, x)`` label values (resampled nearest neighbour, so
  it keeps exactly the values it had);
- optional ``"mask"``: float32 ``(1, z, y, x)`` PET field-of-view mask (nearest, filled
  with 0), which normalisation then uses for the PET statistics.

Every transform is called as ``transform(sample, generator)``; all randomness comes
from the :class:`torch.Generator`, so a sample seeded with the same generator state
is augmented identically (the datasets derive it from ``(seed, epoch, index)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "Compose",
    "RandomMirror",
    "RandomRotation",
    "Sample",
    "SequentialRotation",
    "Transform",
    "affine_resample",
    "affine_theta",
    "rotation_matrix",
]

Sample = dict[str, Tensor]
"""A training sample: ``{"image": (C, z, y, x), "label": (1, z, y, x), "mask"?: (1, z, y, x)}``."""

_NEAREST_KEYS = ("label", "mask")


class Transform(Protocol):
    """Anything called as ``transform(sample, generator) -> sample``."""

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample: ...  # pragma: no cover


def _uniform(generator: torch.Generator) -> float:
    return float(torch.rand((), generator=generator))


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    """Integer uniformly drawn from ``[low, high]`` (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def _random_axes(low: int, high: int, generator: torch.Generator) -> list[int]:
    """A random subset of ``{0, 1, 2}`` with between ``low`` and ``high`` elements (sorted)."""
    count = _randint(low, high, generator)
    order = torch.randperm(3, generator=generator)[:count]
    return sorted(int(a) for a in order)


def rotation_matrix(angles_deg: Sequence[float]) -> Tensor:
    """The 3×3 rotation (float64) in array-axis order (z, y, x) for angles about axes z, y, x.

    ``angles_deg[a]`` rotates in the plane of the two *other* array axes ``(b, c)``
    (``b < c``), in the direction that takes axis ``b`` towards axis ``c`` — the
    direction of ``np.rot90(array, k=1, axes=(b, c))`` for +90°. The rotations are
    applied about z, then y, then x.
    """
    total = torch.eye(3, dtype=torch.float64)
    for axis, angle in enumerate(angles_deg):
        if angle == 0:
            continue
        b, c = [i for i in range(3) if i != axis]
        t = math.radians(float(angle))
        rot = torch.eye(3, dtype=torch.float64)
        # np.rot90(k=1, axes=(b, c)) sends the element at (i_b, i_c) to (n_c-1-i_c, i_b):
        # output position p = R q of input position q (centred) with R[b,c] = -1, R[c,b] = 1.
        rot[b, b] = math.cos(t)
        rot[c, c] = math.cos(t)
        rot[b, c] = -math.sin(t)
        rot[c, b] = math.sin(t)
        total = rot @ total
    return total


def affine_theta(matrix_zyx: Tensor, spatial: Sequence[int]) -> Tensor:
    """The ``(3, 4)`` float32 ``theta`` of :func:`torch.nn.functional.affine_grid` for ``matrix_zyx``.

    The output-to-input map in voxel units is ``q = M⁻¹ p`` about the centre; affine_grid
    works in normalised coordinates (x, y, z order, ``align_corners=False``:
    ``n = (2 i + 1) / size - 1``), so the map is conjugated with the per-axis half-sizes to
    stay isotropic in voxels.
    """
    inverse = torch.linalg.inv(matrix_zyx.to(torch.float64))
    half = torch.tensor([s / 2.0 for s in spatial], dtype=torch.float64)
    theta_zyx = torch.diag(1.0 / half) @ inverse @ torch.diag(half)
    theta = torch.zeros(3, 4, dtype=torch.float32)
    theta[:, :3] = theta_zyx.flip(0).flip(1).to(torch.float32)  # (z, y, x) -> (x, y, z)
    return theta


def affine_resample(
    sample: Sample,
    matrix_zyx: Tensor,
    *,
    image_fill: Sequence[float] = (-1024.0, 0.0),
) -> Sample:
    """Resample a sample through the linear map ``matrix_zyx`` about the volume's centre.

    The output voxel at centred position ``p`` (array units, axes z, y, x) takes the
    input value at ``matrix_zyx⁻¹ p``: a rotation matrix rotates the content by that
    rotation. Images use trilinear interpolation and are filled with ``image_fill``
    (one value per channel) outside the input; ``"label"`` and ``"mask"`` use nearest
    neighbour and are filled with 0.

    Parameters
    ----------
    sample
        The sample (see :data:`Sample`); other keys are passed through.
    matrix_zyx
        3×3 linear map in array-axis order (z, y, x).
    image_fill
        Fill value of each image channel (raw units), e.g. ``(-1024, 0)`` for [CT, PET].
    """
    image = sample["image"]
    spatial = image.shape[-3:]
    grid = F.affine_grid(affine_theta(matrix_zyx, spatial)[None], [1, 1, *spatial], align_corners=False)

    out = dict(sample)
    fill = torch.as_tensor(list(image_fill), dtype=image.dtype).reshape(-1, 1, 1, 1)
    if fill.shape[0] != image.shape[0]:
        raise ValueError(f"image_fill has {fill.shape[0]} values for {image.shape[0]} image channels")
    shifted = (image - fill).unsqueeze(0)
    moved = F.grid_sample(
        shifted, grid.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=False
    )
    out["image"] = moved[0] + fill
    keys = [key for key in _NEAREST_KEYS if key in sample]
    if keys:  # one nearest-neighbour pass for label and mask together
        stacked = torch.cat([sample[key].float() for key in keys]).unsqueeze(0)
        resampled = F.grid_sample(stacked, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        start = 0
        for key in keys:
            n = sample[key].shape[0]
            out[key] = resampled[start : start + n].to(sample[key].dtype)
            start += n
    return out


class RandomRotation:
    """Random rotation about 1–3 random axes by integer angles (and an optional random zoom).

    Parameters
    ----------
    p
        Probability of rotating a sample.
    max_angle
        Each chosen axis is rotated by an integer angle drawn uniformly from
        ``[-max_angle, max_angle]`` degrees.
    axes
        ``(min, max)`` number of axes rotated (uniform).
    image_fill
        Per-channel fill value (raw units) for the area rotated in from outside.
    scale_p
        Probability of an isotropic zoom by a factor from ``scale_range`` (an extra,
        not in the paper; 0 by default).
    scale_range
        ``(min, max)`` zoom factor.
    """

    def __init__(
        self,
        p: float = 0.5,
        max_angle: float = 44.0,
        *,
        axes: tuple[int, int] = (1, 3),
        image_fill: Sequence[float] = (-1024.0, 0.0),
        scale_p: float = 0.0,
        scale_range: tuple[float, float] = (0.9, 1.1),
    ) -> None:
        self.p = p
        self.max_angle = int(max_angle)
        self.axes = axes
        self.image_fill = tuple(float(v) for v in image_fill)
        self.scale_p = scale_p
        self.scale_range = scale_range

    def sample_matrix(self, generator: torch.Generator) -> Tensor | None:
        """Draw the 3×3 map of one sample (``None``: leave the sample unchanged)."""
        matrix: Tensor | None = None
        if _uniform(generator) < self.p:
            angles = [0.0, 0.0, 0.0]
            for axis in _random_axes(self.axes[0], self.axes[1], generator):
                angles[axis] = float(_randint(-self.max_angle, self.max_angle, generator))
            if any(angles):
                matrix = rotation_matrix(angles)
        if self.scale_p > 0 and _uniform(generator) < self.scale_p:
            lo, hi = self.scale_range
            factor = lo + (hi - lo) * _uniform(generator)
            scale = torch.eye(3, dtype=torch.float64) * factor
            matrix = scale if matrix is None else scale @ matrix
        return matrix

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        """Rotate ``sample`` (images linear, label/mask nearest)."""
        matrix = self.sample_matrix(generator)
        if matrix is None:
            return sample
        return affine_resample(sample, matrix, image_fill=self.image_fill)

    def __repr__(self) -> str:
        return f"RandomRotation(p={self.p}, max_angle={self.max_angle}, axes={self.axes})"


class SequentialRotation:
    """The paper's rotation: 1–3 distinct random axes, one after the other, one interpolation each.

    With probability ``p`` a sample is rotated: a number of axes is drawn uniformly
    from ``axes``, then that many distinct axes in random order; each is rotated in
    turn (about the volume centre, same size) by an integer angle whose magnitude is
    drawn uniformly from ``0..max_angle`` degrees and whose sign is random. Images are
    interpolated linearly and filled with ``image_fill`` outside; ``"label"`` and
    ``"mask"`` by nearest neighbour, filled with 0.

    Parameters
    ----------
    p
        Probability of rotating a sample.
    max_angle
        Largest angle magnitude (degrees, integer).
    axes
        ``(min, max)`` number of axes rotated (uniform).
    image_fill
        Per-channel fill value (raw units); the paper's is 0 (0 HU on CT).
    """

    def __init__(
        self,
        p: float = 0.5,
        max_angle: float = 44.0,
        *,
        axes: tuple[int, int] = (1, 3),
        image_fill: Sequence[float] = (0.0, 0.0),
    ) -> None:
        if not 1 <= axes[0] <= axes[1] <= 3:
            raise ValueError(f"axes: need 1 <= min <= max <= 3, got {axes}")
        self.p = p
        self.max_angle = int(max_angle)
        self.axes = axes
        self.image_fill = tuple(float(v) for v in image_fill)

    def sample_steps(self, generator: torch.Generator) -> list[tuple[int, int]] | None:
        """Draw the rotations of one sample: ``None`` (not rotated) or ``[(axis, degrees), ...]`` in order.

        ``axis`` is an array axis of ``(z, y, x)`` (0, 1, 2); the axes are distinct.
        """
        if not _uniform(generator) < self.p:
            return None
        count = _randint(self.axes[0], self.axes[1], generator)
        order = torch.randperm(3, generator=generator)[:count]
        steps: list[tuple[int, int]] = []
        for axis in order:
            magnitude = _randint(0, self.max_angle, generator)
            sign = 1 if _uniform(generator) < 0.5 else -1
            steps.append((int(axis), sign * magnitude))
        return steps

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        """Rotate ``sample`` about each drawn axis in turn (images linear, label/mask nearest)."""
        steps = self.sample_steps(generator)
        if not steps:
            return sample
        for axis, angle in steps:
            if angle == 0:
                continue  # a rotation by 0 degrees is the identity
            angles = [0.0, 0.0, 0.0]
            angles[axis] = float(angle)
            sample = affine_resample(sample, rotation_matrix(angles), image_fill=self.image_fill)
        return sample

    def __repr__(self) -> str:
        return (
            f"SequentialRotation(p={self.p}, max_angle={self.max_angle}, axes={self.axes}, "
            f"image_fill={self.image_fill})"
        )


class RandomMirror:
    """Random mirroring over a random subset of the spatial axes.

    Parameters
    ----------
    p
        Probability of drawing a mirroring for a sample.
    axes
        ``(min, max)`` number of axes flipped, drawn uniformly; then that many distinct
        axes. The default ``(1, 3)`` flips every drawn sample; the paper's ``(0, 3)``
        flips none a quarter of the time (so a sample is flipped with probability
        ``p × 3/4``).
    """

    def __init__(self, p: float = 0.5, *, axes: tuple[int, int] = (1, 3)) -> None:
        if not 0 <= axes[0] <= axes[1] <= 3:
            raise ValueError(f"axes: need 0 <= min <= max <= 3, got {axes}")
        self.p = p
        self.axes = axes

    def sample_axes(self, generator: torch.Generator) -> list[int]:
        """Draw the spatial axes (0, 1, 2 of ``(z, y, x)``, sorted) to flip; ``[]``: no flip."""
        if not _uniform(generator) < self.p:
            return []
        return _random_axes(self.axes[0], self.axes[1], generator)

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        """Flip every tensor of ``sample`` over the same random spatial axes."""
        axes = [a + 1 for a in self.sample_axes(generator)]  # skip the channel axis
        if not axes:
            return sample
        return {key: torch.flip(value, dims=axes) for key, value in sample.items()}

    def __repr__(self) -> str:
        return f"RandomMirror(p={self.p}, axes={self.axes})"


class Compose:
    """Apply transforms one after another with the same generator.

    Parameters
    ----------
    transforms
        The transforms, in order.
    """

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        """Apply every transform in order."""
        for transform in self.transforms:
            sample = transform(sample, generator)
        return sample

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"
