"""Small helpers shared by the models: input-shape check and logits → probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from hecktorseg.errors import DataError

__all__ = ["SIZE_DIVISOR", "check_input_shape", "is_exporting", "probabilities"]

#: The U-Nets pool four times, so every spatial side must be a multiple of 2**4.
SIZE_DIVISOR = 16


def check_input_shape(shape: Sequence[int] | torch.Size, *, divisor: int = SIZE_DIVISOR) -> None:
    """Raise a clear error unless ``shape`` is ``(N, C, z, y, x)`` with sides that are multiples of ``divisor``.

    Parameters
    ----------
    shape
        Shape of the network input, ``(N, C, z, y, x)``.
    divisor
        Required divisor of every spatial side (16 for the four-times-pooling SE-norm U-Net).

    Raises
    ------
    hecktorseg.errors.DataError
        If the tensor is not 5-D or a spatial side is not a positive multiple of ``divisor``.
    """
    dims = tuple(int(s) for s in shape)
    if len(dims) != 5:
        raise DataError(
            f"the network input must be a 5-D tensor (N, C, z, y, x); got shape {dims}",
            hint="add batch and channel axes, e.g. image[None] for a (C, z, y, x) array",
        )
    spatial = dims[2:]
    bad = [side for side in spatial if side <= 0 or side % divisor != 0]
    if bad:
        suggestion = tuple(max(divisor, -(-side // divisor) * divisor) for side in spatial)
        raise DataError(
            f"the spatial sides of the network input (z, y, x) = {spatial} must all be multiples of "
            f"{divisor}, because the U-Net halves them four times",
            hint=f"crop or pad the volume, e.g. to {suggestion} (the default 144³ box works)",
        )


def probabilities(logits: Tensor) -> Tensor:
    """Turn network logits ``(N, C, ...)`` into probabilities.

    Parameters
    ----------
    logits
        Raw network output.

    Returns
    -------
    torch.Tensor
        ``sigmoid(logits)`` when ``C == 1`` (binary: probability of label 1), otherwise
        ``softmax`` over the channel axis (channel 0 = background, channel k = label k).
    """
    if logits.ndim < 2:
        raise DataError(f"logits must have a channel axis (N, C, ...); got shape {tuple(logits.shape)}")
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def is_exporting() -> bool:
    """True while TorchScript tracing / scripting (shape checks are skipped then: shapes are symbolic)."""
    return bool(torch.jit.is_tracing() or torch.jit.is_scripting())  # type: ignore[attr-defined,no-untyped-call]
