"""Ensembling and test-time mirroring: the mean (and variance) over models × mirrorings.

:class:`Ensemble` holds the compiled models of a :class:`~hecktorseg.inference.Predictor`
and averages their probabilities for one window, optionally over the 8 mirrorings of
:data:`MIRROR_AXES` (test-time augmentation), with a running (Welford) mean and variance.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor

from hecktorseg.errors import CheckpointError
from hecktorseg.inference.backends import CompiledModel
from hecktorseg.models import probabilities

__all__ = ["MIRROR_AXES", "Ensemble"]

MIRROR_AXES: tuple[tuple[int, ...], ...] = tuple(
    combo for r in range(4) for combo in itertools.combinations((2, 3, 4), r)
)
"""The 8 mirrorings of test-time augmentation, as tensor dims of (N, C, z, y, x) to flip (``()`` = none)."""


def _check_finite(prob: Tensor, name: str) -> None:
    """Refuse NaN or infinite probabilities (broken weights would otherwise give empty masks)."""
    if not bool(torch.isfinite(prob).all()):
        bad = int((~torch.isfinite(prob)).sum())
        raise CheckpointError(
            f"{name}: the model produced {bad} non-finite probabilit{'y' if bad == 1 else 'ies'} "
            "(NaN or infinity)",
            hint="its weights are broken (e.g. a diverged training run); use another checkpoint",
        )


class Ensemble:
    """The mean (and variance) of compiled models' probabilities over models × mirrorings.

    Parameters
    ----------
    models
        The compiled networks (:func:`~hecktorseg.inference.compile_model`).
    model_names
        One name per model, used in errors.
    tta
        Also average over the 8 mirrorings of :data:`MIRROR_AXES`.
    tta_batch
        Mirrorings run together in one batch through each model.
    """

    def __init__(
        self, models: Sequence[CompiledModel], model_names: Sequence[str], *, tta: bool, tta_batch: int = 1
    ) -> None:
        self.models: list[CompiledModel] = list(models)
        self.model_names: list[str] = list(model_names)
        self.tta = bool(tta)
        self.tta_batch = int(tta_batch)

    @property
    def n_members(self) -> int:
        """How many predictions are averaged per voxel (models × mirrorings)."""
        return len(self.models) * (len(MIRROR_AXES) if self.tta else 1)

    def __call__(self, x: Tensor, with_var: bool = False) -> Tensor:
        """Mean (and variance) over models × mirrorings for one window ``(1, 2, z, y, x)``.

        The mirrorings go through each model ``tta_batch`` at a time, as one batch.
        Returns ``(1, C, …)`` or, with ``with_var``, ``(1, 2C, …)`` = [mean, variance].
        """
        mirrors = MIRROR_AXES if self.tta else ((),)
        step = max(1, self.tta_batch)
        groups = [mirrors[i : i + step] for i in range(0, len(mirrors), step)]
        mean: Tensor | None = None
        m2: Tensor | None = None
        count = 0
        for index, model in enumerate(self.models):
            for group in groups:
                batch = torch.cat([torch.flip(x, dims) if dims else x for dims in group], dim=0)
                probs = probabilities(model(batch).float())
                for k, dims in enumerate(group):
                    prob = probs[k : k + 1]
                    prob = (torch.flip(prob, dims) if dims else prob).to(x.device, torch.float32).contiguous()
                    _check_finite(prob, self.model_names[index])
                    count += 1
                    if mean is None:
                        mean = prob.clone()
                        m2 = torch.zeros_like(prob) if with_var else None
                        continue
                    delta = prob - mean
                    mean += delta / count
                    if m2 is not None:
                        m2 += delta * (prob - mean)
        assert mean is not None
        if with_var:
            assert m2 is not None
            return torch.cat([mean, m2 / count], dim=1)
        return mean
