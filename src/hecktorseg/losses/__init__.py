"""Segmentation losses of the HECKTOR 2020 winning solution: Dice, focal and their sum."""

from hecktorseg.losses.segmentation import (
    DiceFocalLoss,
    DiceLoss,
    FocalLoss,
    available_losses,
    build_loss,
    dice_loss,
    focal_loss,
)

__all__ = [
    "DiceFocalLoss",
    "DiceLoss",
    "FocalLoss",
    "available_losses",
    "build_loss",
    "dice_loss",
    "focal_loss",
]
