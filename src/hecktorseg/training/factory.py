"""What a :class:`~hecktorseg.training.TrainConfig` builds: the network, the loss and the augmentation.

The model comes from the registry (:func:`hecktorseg.models.build_model`) with the
hyper-parameters its constructor accepts (:func:`train_model_kwargs`); the augmentation
from the data layer's transforms (:func:`build_augmentation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from hecktorseg.data import Compose, PatchSampler, RandomMirror, RandomRotation, SequentialRotation
from hecktorseg.data.augmentation import Transform
from hecktorseg.losses import build_loss
from hecktorseg.models import build_model
from hecktorseg.models.registry import model_parameters
from hecktorseg.training.classes import resolve_loss_defaults
from hecktorseg.training.config import TrainConfig

__all__ = [
    "build_augmentation",
    "build_train_loss",
    "build_train_model",
    "patch_window",
    "train_model_kwargs",
]


def build_augmentation(config: TrainConfig, image_fill: Sequence[float] = (-1024.0, 0.0)) -> Transform | None:
    """The augmentation (rotation, mirroring, then the patch crop) of ``config``; ``None`` if all off.

    ``rotation_mode="sequential"`` gives the paper's :class:`~hecktorseg.data.SequentialRotation`
    (an optional zoom then follows as a separate step), ``"composed"`` hecktorseg's
    :class:`~hecktorseg.data.RandomRotation`.

    Parameters
    ----------
    config
        Rotation / mirror / zoom probabilities and ranges.
    image_fill
        Raw-unit fill values of [CT, PET] for the area rotated in (the dataset's
        ``ct_fill``, ``pet_fill``), unless ``config.rotation_fill`` is set.
    """
    fill = tuple(config.rotation_fill) if config.rotation_fill is not None else tuple(image_fill)
    transforms: list[Transform] = []
    rotate = config.rotation_p > 0 and config.max_angle > 0
    if config.rotation_mode == "sequential":
        if rotate:
            transforms.append(
                SequentialRotation(
                    config.rotation_p, config.max_angle, axes=config.rotation_axes, image_fill=fill
                )
            )
        if config.scale_p > 0:
            transforms.append(
                RandomRotation(
                    0.0, 0.0, image_fill=fill, scale_p=config.scale_p, scale_range=config.scale_range
                )
            )
    elif rotate or config.scale_p > 0:
        transforms.append(
            RandomRotation(
                config.rotation_p if config.max_angle > 0 else 0.0,
                config.max_angle,
                axes=config.rotation_axes,
                image_fill=fill,
                scale_p=config.scale_p,
                scale_range=config.scale_range,
            )
        )
    if config.mirror_p > 0:
        transforms.append(RandomMirror(config.mirror_p, axes=config.mirror_axes))
    window = patch_window(config)
    if window is not None:
        transforms.append(PatchSampler(window, config.foreground_p))
    return Compose(transforms) if transforms else None


def patch_window(config: TrainConfig) -> tuple[int, int, int] | None:
    """``config.patch_size`` in array order ``(z, y, x)`` (the window of validation and inference)."""
    if config.patch_size is None:
        return None
    x, y, z = (int(v) for v in config.patch_size)
    return (z, y, x)


def train_model_kwargs(config: TrainConfig, in_channels: int, n_classes: int | None = None) -> dict[str, Any]:
    """Constructor arguments of ``config.model``: those of ``config`` its registered class accepts.

    ``n_classes`` overrides ``config.n_classes``; when both are ``None`` the model has one output.
    """
    classes = n_classes if n_classes is not None else config.n_classes
    kwargs: dict[str, Any] = {
        "in_channels": in_channels,
        "n_classes": classes if classes is not None else 1,
        "n_filters": config.n_filters,
        "reduction": config.reduction,
    }
    accepted = model_parameters(config.model)
    return kwargs if accepted is None else {k: v for k, v in kwargs.items() if k in accepted}


def build_train_model(
    config: TrainConfig, in_channels: int = 2, *, n_classes: int | None = None
) -> nn.Module:
    """The network described by ``config`` (weights from the current torch RNG).

    ``n_classes`` overrides ``config.n_classes``; when both are ``None`` the model has one output.
    """
    return build_model(config.model, **train_model_kwargs(config, in_channels, n_classes))


def build_train_loss(config: TrainConfig, n_classes: int = 1) -> nn.Module:
    """The loss of ``config``: ``config.loss`` with its Dice options (``batch_dice``, ``dice_skip_absent``).

    ``loss: auto`` and ``dice_skip_absent: null`` take the defaults of a model with
    ``n_classes`` outputs (:data:`~hecktorseg.training.classes.LOSS_DEFAULTS`). The Dice
    options only reach the losses that have a Dice term.
    """
    config = resolve_loss_defaults(config, n_classes)
    kwargs: dict[str, Any] = {}
    if config.loss != "focal":
        kwargs = {"batch_dice": config.batch_dice, "skip_absent": bool(config.dice_skip_absent)}
    if config.loss == "dice_ce" and config.ce_class_weights is not None and n_classes > 1:
        kwargs["class_weights"] = config.ce_class_weights
    return build_loss(config.loss, **kwargs)
