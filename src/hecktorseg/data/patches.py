"""Training on patches, with foreground over-sampling: small classes (GTVn) get seen.

A lymph node of 1 ml is about a dozen voxels of a 4.5 mm grid and a few hundred of a
1 mm grid, in a volume of tens of thousands to millions: a whole-volume step gives the
node class a tiny share of the loss. :class:`PatchSampler` crops a patch of a fixed size
from each (augmented) training sample instead; with probability ``foreground_p`` the patch
is centred on a voxel of a foreground class drawn uniformly from the classes present in
that sample (so GTVn, when present, is drawn as often as GTVp), otherwise anywhere. This
is the over-sampling nnU-Net uses (there: one patch in three is forced to hold
foreground). Inference and validation then go window by window with windows of the
patch size, so the network always sees inputs of the size it was trained on (the
SE-norm statistics are taken over the whole input).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hecktorseg.data.augmentation import Sample
from hecktorseg.errors import ConfigError

__all__ = ["PatchSampler", "patch_start"]


def patch_start(
    shape: Sequence[int],
    size: Sequence[int],
    centre: Sequence[int] | None,
    generator: torch.Generator,
) -> tuple[int, ...]:
    """Start index of a patch of ``size`` in a volume of ``shape`` (same axis order).

    With ``centre`` the patch is centred there (shifted inside the volume where it would
    leave it); without, the start is uniform over every position that fits.
    """
    starts = []
    for n, s, c in zip(shape, size, centre if centre is not None else [None] * len(shape), strict=True):
        high = n - s
        if c is None:
            starts.append(int(torch.randint(0, high + 1, (), generator=generator)))
        else:
            starts.append(min(max(int(c) - s // 2, 0), high))
    return tuple(starts)


class PatchSampler:
    """Crop a ``size`` patch, centred on a random foreground voxel with probability ``foreground_p``.

    Parameters
    ----------
    size
        Patch side lengths in array order ``(z, y, x)``; no larger than the samples.
    foreground_p
        Probability that the patch is centred on a foreground voxel: a class is drawn
        uniformly among the label values > 0 present in the sample, then one of its voxels
        uniformly. Samples without foreground get a uniform patch.

    Raises
    ------
    ConfigError
        On a size that is not three positive sides or a probability outside [0, 1]; at
        call time, when the sample is smaller than the patch.
    """

    def __init__(self, size: Sequence[int], foreground_p: float = 0.33) -> None:
        if len(size) != 3 or any(int(s) < 1 for s in size):
            raise ConfigError(f"patch size must be three positive sides (z, y, x), got {tuple(size)}")
        if not 0.0 <= foreground_p <= 1.0:
            raise ConfigError(f"foreground_p must lie in [0, 1], got {foreground_p}")
        self.size = tuple(int(s) for s in size)
        self.foreground_p = float(foreground_p)

    def __repr__(self) -> str:
        return f"PatchSampler(size={self.size}, foreground_p={self.foreground_p})"

    def centre(self, label: torch.Tensor, generator: torch.Generator) -> tuple[int, ...] | None:
        """The voxel to centre on (``None``: a uniform patch), drawn as the class docstring says."""
        if float(torch.rand((), generator=generator)) >= self.foreground_p:
            return None
        values = torch.unique(label)
        classes = [int(v) for v in values.tolist() if v > 0]
        if not classes:
            return None
        chosen = classes[int(torch.randint(0, len(classes), (), generator=generator))]
        voxels = torch.nonzero(label == chosen)
        pick = voxels[int(torch.randint(0, voxels.shape[0], (), generator=generator))]
        return tuple(int(v) for v in pick)

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        """Crop every entry of ``sample`` (``(C, z, y, x)`` tensors) to the same patch."""
        label = sample["label"][0]
        shape = tuple(label.shape)
        if any(s > n for s, n in zip(self.size, shape, strict=True)):
            raise ConfigError(
                f"training patch {self.size} (z, y, x) is larger than the samples {shape}",
                hint="choose a patch_size no larger than the preprocessed grid",
            )
        start = patch_start(shape, self.size, self.centre(label, generator), generator)
        (z, y, x), (dz, dy, dx) = start, self.size
        return {
            key: value[:, z : z + dz, y : y + dy, x : x + dx].contiguous() for key, value in sample.items()
        }
