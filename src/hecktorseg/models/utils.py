"""Small helpers shared by the models: input-shape check, logits → probabilities, and the
split into features and output block that reduced-precision inference uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from hecktorseg.errors import DataError

__all__ = ["SIZE_DIVISOR", "check_input_shape", "is_exporting", "probabilities", "split_output_head"]

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


class _Part(nn.Module):
    """One of ``model.forward_features`` / ``model.forward_head`` as a module of its own (shares the weights)."""

    def __init__(self, model: nn.Module, method: str) -> None:
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, x: Tensor) -> Tensor:
        part: Callable[[Tensor], Tensor] = getattr(self.model, self.method)
        return part(x)


def split_output_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """The network as two modules, ``features`` and ``head``, with ``head(features(x)) == model(x)``.

    Reduced-precision inference runs ``features`` (all but a few hundred-thousandths of
    the arithmetic) in bfloat16 and ``head`` — the 1×1×1 convolution from the last
    block's features to logits — in float32. Rounding the features and the weights of
    that last sum to bfloat16 moves every logit, those near the decision threshold
    included; keeping it in float32 brings the masks of trained models closer to full
    float32 for about 15 % more time (measurements in :doc:`/performance`).

    Parameters
    ----------
    model
        A network; it is split when it defines ``forward_features`` and ``forward_head``
        (both U-Nets of this package do).

    Returns
    -------
    tuple of torch.nn.Module or None
        The two parts (sharing ``model``'s weights), or ``None`` for a model that does not
        define the split.
    """
    if not (
        callable(getattr(model, "forward_features", None)) and callable(getattr(model, "forward_head", None))
    ):
        return None
    return _Part(model, "forward_features"), _Part(model, "forward_head")
