"""Segmentation losses: the HECKTOR 2020 winning solution's Dice + focal, and Dice + cross-entropy."""

from hecktorseg.losses.segmentation import (
    DiceCELoss,
    DiceFocalLoss,
    DiceLoss,
    FocalLoss,
    available_losses,
    build_loss,
    cross_entropy_loss,
    dice_loss,
    focal_loss,
)

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
]
