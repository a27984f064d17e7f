"""Pure training and validation steps that any loop (ours, Lightning, Ignite, ...) can drive.

Neither function knows about epochs, files or processes: they take a model, a
batch ``{"image": (N, C, z, y, x), "label": (N, 1, z, y, x)}``, a loss callable
``loss_fn(logits, label_map) -> scalar`` and return plain floats. The loss is
always evaluated in float32, outside autocast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from hecktorseg.models.sliding_window import sliding_window_predict
from hecktorseg.runtime import autocast

__all__ = [
    "EvalBatch",
    "batch_dice",
    "class_overlaps",
    "eval_step",
    "eval_step_stats",
    "train_step",
    "train_step_loss",
]

LossFn = Callable[[Tensor, Tensor], Tensor]


def _to_device(
    batch: Mapping[str, Any], device: torch.device, memory_format: torch.memory_format
) -> tuple[Tensor, Tensor]:
    non_blocking = device.type == "cuda"
    image = batch["image"].to(device, non_blocking=non_blocking)
    if memory_format is not torch.contiguous_format:
        image = image.contiguous(memory_format=memory_format)
    label = batch["label"].to(device, non_blocking=non_blocking)
    return image, label


def train_step(
    model: nn.Module,
    batch: Mapping[str, Any],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    *,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    grad_clip: float | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> float:
    """One optimisation step on one batch; returns the batch loss.

    The same as :func:`train_step_loss` (which see for the parameters), with the loss
    brought to the host: a loop that wants the GPU never to wait calls that instead.
    """
    return float(
        train_step_loss(
            model,
            batch,
            loss_fn,
            optimizer,
            scaler=scaler,
            amp_dtype=amp_dtype,
            device=device,
            grad_clip=grad_clip,
            memory_format=memory_format,
        )
    )


def train_step_loss(
    model: nn.Module,
    batch: Mapping[str, Any],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    *,
    scaler: torch.amp.GradScaler | None = None,
    amp_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    grad_clip: float | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> Tensor:
    """One optimisation step on one batch; returns the detached batch loss, still on the device.

    Parameters
    ----------
    model
        The network (possibly wrapped in DistributedDataParallel), in train mode.
    batch
        ``{"image": float (N, C, z, y, x), "label": (N, 1, z, y, x) label values}``.
    loss_fn
        ``loss_fn(logits, label) -> scalar`` (mean-reduced).
    optimizer
        Its gradients are zeroed, filled and applied.
    scaler
        Gradient scaler for float16 autocast (``None``: no scaling).
    amp_dtype
        Autocast dtype (``torch.float16`` / ``torch.bfloat16``) or ``None`` for float32.
    device
        Where to run.
    grad_clip
        Clip the total gradient norm to this value (``None``: no clipping).
    memory_format
        ``torch.channels_last_3d`` to feed channels-last input.
    """
    dev = torch.device(device)
    image, label = _to_device(batch, dev, memory_format)
    optimizer.zero_grad(set_to_none=True)
    with autocast(dev, amp_dtype):
        logits = model(image)
    loss = loss_fn(logits.float(), label)
    if scaler is not None:
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()  # type: ignore[no-untyped-call]
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    return loss.detach()


def batch_dice(logits: Tensor, label: Tensor, *, threshold: float = 0.5) -> Tensor:
    """Dice of the thresholded prediction per sample, shape ``(N,)`` (float64).

    One output channel: foreground where ``sigmoid(logit) > threshold``, target
    ``label == 1``. Several channels: the arg-max class, Dice averaged over the
    foreground classes 1..C−1. A sample where prediction and target are both empty
    scores 1.
    """
    n_classes = logits.shape[1]
    lab = label[:, 0].round().long()
    if n_classes == 1:
        pred_masks = [(torch.sigmoid(logits[:, 0].float()) > threshold)]
        true_masks = [lab == 1]
    else:
        arg = torch.argmax(logits.float(), dim=1)
        pred_masks = [arg == k for k in range(1, n_classes)]
        true_masks = [lab == k for k in range(1, n_classes)]
    scores = []
    for pred, true in zip(pred_masks, true_masks, strict=True):
        dims = tuple(range(1, pred.ndim))
        inter = (pred & true).sum(dim=dims).double()
        total = pred.sum(dim=dims).double() + true.sum(dim=dims).double()
        dice = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
        scores.append(dice)
    return torch.stack(scores).mean(dim=0)


def class_overlaps(logits: Tensor, label: Tensor) -> Tensor:
    """Voxel counts per sample and foreground class: ``(N, C−1, 3)`` = [intersection, predicted, true].

    Only for several output channels: the prediction is the arg-max class, the
    target the label map ``(N, 1, ...)``; class ``k`` (1 … C−1) sits at index ``k − 1``.
    float64 counts, summed over the spatial axes.
    """
    n_classes = logits.shape[1]
    if n_classes < 2:
        raise ValueError("class_overlaps needs at least 2 output channels")
    lab = label[:, 0].round().long()
    arg = torch.argmax(logits.float(), dim=1)
    dims = tuple(range(1, arg.ndim))
    rows = []
    for k in range(1, n_classes):
        pred, true = arg == k, lab == k
        rows.append(
            torch.stack(
                [
                    (pred & true).sum(dim=dims).double(),
                    pred.sum(dim=dims).double(),
                    true.sum(dim=dims).double(),
                ],
                dim=-1,
            )
        )
    return torch.stack(rows, dim=1)


@attrs.frozen
class EvalBatch:
    """What :func:`eval_step_stats` measured on one validation batch.

    Attributes
    ----------
    loss
        Batch loss.
    dice
        Per-sample Dice (see :func:`batch_dice`).
    overlaps
        ``None`` for one output channel; otherwise :func:`class_overlaps` as a
        ``(N, C−1, 3)`` float64 tensor on the CPU.
    """

    loss: float
    dice: list[float]
    overlaps: Tensor | None = None


@torch.no_grad()
def eval_step_stats(
    model: nn.Module,
    batch: Mapping[str, Any],
    loss_fn: LossFn,
    *,
    threshold: float = 0.5,
    amp_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    memory_format: torch.memory_format = torch.contiguous_format,
    window: Sequence[int] | None = None,
) -> EvalBatch:
    """Like :func:`eval_step`, also returning per-class voxel counts for several output channels.

    With ``window`` (z, y, x) — a model trained on patches of that size — each volume is
    predicted window by window (:func:`~hecktorseg.inference.sliding_window_predict`, half
    overlap, logits blended), as inference does.
    """
    dev = torch.device(device)
    image, label = _to_device(batch, dev, memory_format)
    with autocast(dev, amp_dtype):
        if window is None:
            logits = model(image)
        else:
            logits = torch.cat(
                [
                    sliding_window_predict(lambda patch: model(patch).float(), image[i : i + 1], window)
                    for i in range(image.shape[0])
                ]
            )
    logits = logits.float()
    loss = loss_fn(logits, label)
    dice = batch_dice(logits, label, threshold=threshold)
    overlaps = class_overlaps(logits, label).cpu() if logits.shape[1] > 1 else None
    return EvalBatch(float(loss), [float(d) for d in dice.cpu()], overlaps)


@torch.no_grad()
def eval_step(
    model: nn.Module,
    batch: Mapping[str, Any],
    loss_fn: LossFn,
    *,
    threshold: float = 0.5,
    amp_dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    memory_format: torch.memory_format = torch.contiguous_format,
) -> tuple[float, list[float]]:
    """Loss and per-sample Dice (at ``threshold``) of one validation batch.

    Parameters
    ----------
    model
        The network; it is *not* switched to eval mode here (the caller does).
    batch, loss_fn, amp_dtype, device, memory_format
        As for :func:`train_step`.
    threshold
        Probability threshold of the prediction.

    Returns
    -------
    tuple
        ``(batch loss, [Dice of each sample])``.
    """
    out = eval_step_stats(
        model,
        batch,
        loss_fn,
        threshold=threshold,
        amp_dtype=amp_dtype,
        device=device,
        memory_format=memory_format,
    )
    return out.loss, out.dice
