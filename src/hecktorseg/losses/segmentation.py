"""Dice, focal and Dice + focal losses with the definitions of the HECKTOR 2020 winning solution.

Binary case (one output channel), on probabilities ``p`` and binary targets ``t``:

* Dice, per sample over all non-batch axes, then the batch mean:
  ``1 − (2Σpt + 1) / (Σp² + Σt² + 1)``;
* focal (γ = 2), with ``p`` clamped to ``[1e−3, 1 − 1e−3]``:
  ``−[t(1−p)²·log p + (1−t)p²·log(1−p)]``, mean over all voxels;
* Dice + focal with weights 1 and 1.

Targets are label maps ``(N, 1, z, y, x)`` of label values (float or integer). With one
output channel the target is ``label == 1`` (GTVt / GTVp). With ``C >= 2`` channels
(softmax; channel 0 = background, channel k = label k) the label map is one-hot encoded:
the Dice loss is computed per class as above (per sample, over the spatial axes) and
averaged over the *foreground* classes 1 … C−1 (background is excluded, so a large
background does not dominate); the focal loss applies the binary formula to every class
probability and averages over all channels and voxels. A target that already has the
prediction's shape with ``C >= 2`` is taken as one-hot / soft.

GTVp + GTVn models (HECKTOR 2022/2025/2026) use ``C = 3`` (background, GTVp, GTVn): one
softmax, so each voxel gets exactly one of the labels 0/1/2 by arg-max at inference, and

``L = mean_n [ ½ Σ_{k=1,2} (1 − (2Σ_i p_nki t_nki + 1) / (Σ_i p_nki² + Σ_i t_nki + 1)) ]
+ mean_{n,k,i} −[t(1−p)²·log p + (1−t)p²·log(1−p)]`` (``t`` one-hot, so ``t² = t``;
``p`` clamped in the focal term only), as written out on the training page of the docs.

With ``from_logits=True`` (default) the input is passed through sigmoid (``C == 1``) or
softmax (``C > 1``) first; with ``from_logits=False`` the input is probabilities and
for ``C == 1`` the losses equal the original implementation's exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hecktorseg.errors import ConfigError, DataError

__all__ = [
    "DiceCELoss",
    "DiceFocalLoss",
    "DiceLoss",
    "FocalLoss",
    "available_losses",
    "build_loss",
    "cross_entropy_loss",
    "dice_loss",
    "focal_loss",
    "prepare_target",
]


def _as_probabilities(input: Tensor, from_logits: bool) -> Tensor:
    if input.ndim < 3:
        raise DataError(f"loss input must be (N, C, ...) with spatial axes; got shape {tuple(input.shape)}")
    if input.dtype in (torch.float16, torch.bfloat16):
        input = input.float()
    if not from_logits:
        return input
    return torch.sigmoid(input) if input.shape[1] == 1 else torch.softmax(input, dim=1)


def prepare_target(target: Tensor, n_channels: int, like: Tensor) -> Tensor:
    """Turn a label map ``(N, 1, ...)`` into the target matching an ``(N, C, ...)`` prediction.

    Parameters
    ----------
    target
        Label map of label values (float or integer), shape ``(N, 1, ...)`` or ``(N, ...)``;
        for ``C >= 2`` also an already one-hot / soft target of the prediction's shape.
    n_channels
        Number of prediction channels ``C``.
    like
        The prediction (for shape, dtype and device).

    Returns
    -------
    torch.Tensor
        ``(label == 1)`` for ``C == 1``; the one-hot encoding for ``C >= 2``; dtype of ``like``.

    Raises
    ------
    hecktorseg.errors.DataError
        On a shape mismatch or label values outside ``0 … C−1`` (``C >= 2``).
    """
    if target.ndim == like.ndim - 1:
        target = target.unsqueeze(1)
    if n_channels > 1 and tuple(target.shape) == tuple(like.shape):
        return target.to(dtype=like.dtype, device=like.device)
    expected = (like.shape[0], 1, *like.shape[2:])
    if tuple(target.shape) != tuple(expected):
        raise DataError(
            f"target shape {tuple(target.shape)} does not match the prediction {tuple(like.shape)}",
            hint=f"pass a label map of shape {tuple(expected)}",
        )
    if n_channels == 1:
        return (target == 1).to(dtype=like.dtype, device=like.device)
    labels = torch.round(target).long() if target.is_floating_point() else target.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_channels):
        raise DataError(
            f"target labels range {int(labels.min())}..{int(labels.max())} but the prediction has "
            f"{n_channels} channels (labels 0..{n_channels - 1})",
            hint="set n_classes to the number of labels including background",
        )
    one_hot = F.one_hot(labels[:, 0], n_channels)  # (N, ..., C)
    return one_hot.movedim(-1, 1).to(dtype=like.dtype, device=like.device)


def dice_loss(
    probs: Tensor,
    target: Tensor,
    *,
    smooth: float = 1.0,
    batch: bool = False,
    skip_absent: bool = False,
) -> Tensor:
    """Soft Dice loss on probabilities and a matching (binary / one-hot) target.

    Per sample and channel over the spatial axes: ``1 − (2Σpt + s) / (Σp² + Σt² + s)``.
    One channel: that value (which equals the original's sum over all non-batch axes).
    Several channels: the mean over channels 1 … C−1 (foreground). Then the batch mean.

    Parameters
    ----------
    probs
        ``(N, C, ...)`` probabilities.
    target
        Same shape as ``probs``.
    smooth
        Smoothing term ``s`` (1 in the original).
    batch
        Sum over the batch too (one Dice per class for the whole batch, as nnU-Net's
        "batch Dice") instead of one per sample.
    skip_absent
        Leave out of the mean the (sample, class) pairs whose target is empty (for
        ``batch``: the classes empty in the whole batch). Such a pair otherwise pulls
        every probability of its class towards 0 whatever the other samples need; a
        sample without any foreground then adds nothing to the Dice term (its voxels
        still count in the focal or cross-entropy term). With nothing left the loss is 0.
    """
    dims = tuple(range(2, probs.ndim))
    intersection = (probs * target).sum(dim=dims)
    denominator = (probs * probs).sum(dim=dims) + (target * target).sum(dim=dims)
    present = target.sum(dim=dims) > 0  # (N, C)
    if batch:
        intersection, denominator = intersection.sum(0, keepdim=True), denominator.sum(0, keepdim=True)
        present = present.any(0, keepdim=True)
    per_class = 1.0 - (2.0 * intersection + smooth) / (denominator + smooth)  # (N or 1, C)
    if probs.shape[1] > 1:
        per_class, present = per_class[:, 1:], present[:, 1:]
    if not skip_absent:
        return per_class.mean(dim=1).mean()
    weight = present.to(per_class.dtype)
    return (per_class * weight).sum() / weight.sum().clamp_min(1.0)


def cross_entropy_loss(
    probs: Tensor, target: Tensor, *, eps: float = 1e-6, class_weights: Sequence[float] | None = None
) -> Tensor:
    """Cross-entropy on probabilities, mean over the voxels of all samples.

    Several channels (softmax): ``−Σ_c w_c·t_c·log p_c`` per voxel (``w_c = 1`` unless
    ``class_weights`` is given). One channel (sigmoid): the binary
    ``−[t·log p + (1−t)·log(1−p)]``. ``p`` is clamped to ``[eps, 1 − eps]``.

    Parameters
    ----------
    probs
        ``(N, C, ...)`` probabilities.
    target
        Same shape as ``probs`` (one-hot for ``C >= 2``).
    eps
        Clamp margin.
    class_weights
        ``C`` weights (background first), several channels only: a voxel of class ``c``
        counts ``w_c`` times. The mean stays over voxels (not normalised by the weights).
    """
    p = probs.clamp(eps, 1.0 - eps)
    if probs.shape[1] == 1:
        return -(target * torch.log(p) + (1.0 - target) * torch.log(1.0 - p)).mean()
    terms = target * torch.log(p)
    if class_weights is not None:
        if len(class_weights) != probs.shape[1]:
            raise ConfigError(
                f"{len(class_weights)} class weights for {probs.shape[1]} output channels",
                hint="give one weight per output, background first",
            )
        shape = (1, probs.shape[1]) + (1,) * (probs.ndim - 2)
        terms = terms * torch.tensor(class_weights, dtype=terms.dtype, device=terms.device).reshape(shape)
    return -terms.sum(dim=1).mean()


def focal_loss(probs: Tensor, target: Tensor, *, gamma: float = 2.0, eps: float = 1e-3) -> Tensor:
    """Focal loss on probabilities, mean over all elements.

    ``−[t(1−p)^γ·log p + (1−t)p^γ·log(1−p)]`` with ``p`` clamped to ``[eps, 1 − eps]``.

    Parameters
    ----------
    probs
        ``(N, C, ...)`` probabilities.
    target
        Same shape as ``probs``.
    gamma
        Focusing parameter (2 in the original).
    eps
        Clamp margin (1e-3 in the original).
    """
    p = probs.clamp(eps, 1.0 - eps)
    loss = -(target * (1.0 - p) ** gamma * torch.log(p) + (1.0 - target) * p**gamma * torch.log(1.0 - p))
    return loss.mean()


class _SegmentationLoss(nn.Module):
    def __init__(self, from_logits: bool = True) -> None:
        super().__init__()
        self.from_logits = bool(from_logits)

    def _inputs(self, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        probs = _as_probabilities(input, self.from_logits)
        return probs, prepare_target(target, probs.shape[1], probs)


class DiceLoss(_SegmentationLoss):
    """Soft Dice loss (smooth 1, squares in the denominator), see :func:`dice_loss`.

    Parameters
    ----------
    from_logits
        Apply sigmoid (one channel) / softmax (several) to the input first.
    smooth
        Smoothing term.
    batch_dice, skip_absent
        See :func:`dice_loss` (``batch`` and ``skip_absent``).
    """

    def __init__(
        self,
        from_logits: bool = True,
        smooth: float = 1.0,
        batch_dice: bool = False,
        skip_absent: bool = False,
    ) -> None:
        super().__init__(from_logits)
        self.smooth = float(smooth)
        self.batch_dice = bool(batch_dice)
        self.skip_absent = bool(skip_absent)

    def _dice(self, probs: Tensor, target: Tensor) -> Tensor:
        return dice_loss(
            probs, target, smooth=self.smooth, batch=self.batch_dice, skip_absent=self.skip_absent
        )

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of ``input`` ``(N, C, ...)`` against the label map ``target`` ``(N, 1, ...)``."""
        probs, tgt = self._inputs(input, target)
        return self._dice(probs, tgt)


class FocalLoss(_SegmentationLoss):
    """Focal loss (γ = 2, clamp 1e-3), see :func:`focal_loss`.

    Parameters
    ----------
    from_logits
        Apply sigmoid (one channel) / softmax (several) to the input first.
    gamma
        Focusing parameter.
    eps
        Clamp margin of the probabilities.
    """

    def __init__(self, from_logits: bool = True, gamma: float = 2.0, eps: float = 1e-3) -> None:
        super().__init__(from_logits)
        self.gamma = float(gamma)
        self.eps = float(eps)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of ``input`` ``(N, C, ...)`` against the label map ``target`` ``(N, 1, ...)``."""
        probs, tgt = self._inputs(input, target)
        return focal_loss(probs, tgt, gamma=self.gamma, eps=self.eps)


class DiceFocalLoss(DiceLoss):
    """Weighted sum of :class:`DiceLoss` and :class:`FocalLoss` (weights 1 and 1 in the original).

    Parameters
    ----------
    from_logits
        Apply sigmoid (one channel) / softmax (several) to the input first.
    dice_weight, focal_weight
        Weights of the two terms.
    smooth, gamma, eps
        Passed to the two terms.
    batch_dice, skip_absent
        Passed to the Dice term (:func:`dice_loss`).
    """

    def __init__(
        self,
        from_logits: bool = True,
        dice_weight: float = 1.0,
        focal_weight: float = 1.0,
        smooth: float = 1.0,
        gamma: float = 2.0,
        eps: float = 1e-3,
        batch_dice: bool = False,
        skip_absent: bool = False,
    ) -> None:
        super().__init__(from_logits, smooth, batch_dice, skip_absent)
        self.dice_weight = float(dice_weight)
        self.focal_weight = float(focal_weight)
        self.gamma = float(gamma)
        self.eps = float(eps)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of ``input`` ``(N, C, ...)`` against the label map ``target`` ``(N, 1, ...)``."""
        probs, tgt = self._inputs(input, target)
        focal = focal_loss(probs, tgt, gamma=self.gamma, eps=self.eps)
        return self.dice_weight * self._dice(probs, tgt) + self.focal_weight * focal


class DiceCELoss(DiceLoss):
    """Weighted sum of :class:`DiceLoss` and the cross-entropy (:func:`cross_entropy_loss`).

    The usual nnU-Net-style pair: unlike the focal term, the cross-entropy does not damp
    the voxels the model already gets roughly right, so a small class keeps a share of the
    gradient that matches its voxel count.

    Parameters
    ----------
    from_logits
        Apply sigmoid (one channel) / softmax (several) to the input first.
    dice_weight, ce_weight
        Weights of the two terms.
    smooth
        Smoothing term of the Dice term.
    batch_dice, skip_absent
        Passed to the Dice term (:func:`dice_loss`).
    class_weights
        Per-class weights of the cross-entropy (:func:`cross_entropy_loss`).
    """

    def __init__(
        self,
        from_logits: bool = True,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        smooth: float = 1.0,
        batch_dice: bool = False,
        skip_absent: bool = False,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__(from_logits, smooth, batch_dice, skip_absent)
        self.dice_weight = float(dice_weight)
        self.ce_weight = float(ce_weight)
        self.class_weights = tuple(float(w) for w in class_weights) if class_weights is not None else None

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Loss of ``input`` ``(N, C, ...)`` against the label map ``target`` ``(N, 1, ...)``."""
        probs, tgt = self._inputs(input, target)
        ce = cross_entropy_loss(probs, tgt, class_weights=self.class_weights)
        return self.dice_weight * self._dice(probs, tgt) + self.ce_weight * ce


_LOSSES: dict[str, type[_SegmentationLoss]] = {
    "dice": DiceLoss,
    "dice_ce": DiceCELoss,
    "dice_focal": DiceFocalLoss,
    "focal": FocalLoss,
}


def available_losses() -> list[str]:
    """Names accepted by :func:`build_loss`."""
    return sorted(_LOSSES)


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a loss by name: ``"dice"``, ``"focal"`` or ``"dice_focal"`` (the original's loss).

    Parameters
    ----------
    name
        Loss name.
    **kwargs
        Constructor arguments (``from_logits``, weights, ...).

    Raises
    ------
    hecktorseg.errors.ConfigError
        For an unknown name or invalid arguments.
    """
    cls = _LOSSES.get(name)
    if cls is None:
        raise ConfigError(f"unknown loss {name!r}", hint=f"choose one of: {', '.join(available_losses())}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"invalid arguments for loss {name!r}: {exc}") from exc
