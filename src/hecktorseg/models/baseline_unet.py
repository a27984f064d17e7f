"""The plain U-Net baseline of the original implementation.

Our reading of the original's ``BaselineUNet``: four resolution levels (``f, 2f, 4f, 8f``
channels, three MaxPool3d(2) steps), two units per level, each unit Conv3d (3³, no bias)
→ InstanceNorm3d (affine) → ReLU; decoder levels 3 → 1 use ConvTranspose3d (k 3, s 2,
p 1, output padding 1) halving the channels, concatenation ``[upsampled, skip]`` and two
units; a 1×1×1 head returns logits. No squeeze-and-excitation, residuals or fusion.
The attribute names follow the original (``block_L_K_left/right``, ``upconv_L``,
``conv1x1``). Spatial sides must be multiples of 16, as for the SE-norm U-Net, so the
two models accept the same inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hecktorseg.models.layers import BasicConv3d
from hecktorseg.models.registry import register_model
from hecktorseg.models.utils import SIZE_DIVISOR, check_input_shape, is_exporting

__all__ = ["BaselineUNet"]


def _upconv(in_channels: int, out_channels: int) -> nn.ConvTranspose3d:
    return nn.ConvTranspose3d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1)


@register_model("baseline_unet")
class BaselineUNet(nn.Module):
    """Plain four-level 3-D U-Net (conv → instance norm (affine) → ReLU).

    Parameters
    ----------
    in_channels
        Input channels (2: CT, PET).
    n_classes
        Output channels (1: sigmoid; ``>= 2``: softmax with background channel 0).
    n_filters
        Channels at the first level.
    """

    size_divisor = SIZE_DIVISOR
    model_name: str

    def __init__(self, in_channels: int = 2, n_classes: int = 1, n_filters: int = 24) -> None:
        super().__init__()
        for label, value in (
            ("in_channels", in_channels),
            ("n_classes", n_classes),
            ("n_filters", n_filters),
        ):
            if int(value) < 1:
                raise ValueError(f"{label} must be >= 1, got {value}")
        self.in_channels = int(in_channels)
        self.n_classes = int(n_classes)
        self.n_filters = int(n_filters)
        f = self.n_filters

        self.block_1_1_left = BasicConv3d(in_channels, f)
        self.block_1_2_left = BasicConv3d(f, f)
        self.pool_1 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.block_2_1_left = BasicConv3d(f, 2 * f)
        self.block_2_2_left = BasicConv3d(2 * f, 2 * f)
        self.pool_2 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.block_3_1_left = BasicConv3d(2 * f, 4 * f)
        self.block_3_2_left = BasicConv3d(4 * f, 4 * f)
        self.pool_3 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.block_4_1_left = BasicConv3d(4 * f, 8 * f)
        self.block_4_2_left = BasicConv3d(8 * f, 8 * f)

        self.upconv_3 = _upconv(8 * f, 4 * f)
        self.block_3_1_right = BasicConv3d(8 * f, 4 * f)
        self.block_3_2_right = BasicConv3d(4 * f, 4 * f)
        self.upconv_2 = _upconv(4 * f, 2 * f)
        self.block_2_1_right = BasicConv3d(4 * f, 2 * f)
        self.block_2_2_right = BasicConv3d(2 * f, 2 * f)
        self.upconv_1 = _upconv(2 * f, f)
        self.block_1_1_right = BasicConv3d(2 * f, f)
        self.block_1_2_right = BasicConv3d(f, f)

        self.conv1x1 = nn.Conv3d(f, n_classes, kernel_size=1)

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (stored in checkpoints to rebuild the model)."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "n_filters": self.n_filters}

    def forward(self, x: Tensor) -> Tensor:
        """Segment ``x`` ``(N, in_channels, z, y, x)``; returns logits ``(N, n_classes, z, y, x)``."""
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """Everything up to the output layer (``forward == forward_head ∘ forward_features``)."""
        if not is_exporting():
            check_input_shape(x.shape, divisor=self.size_divisor)
        ds0 = self.block_1_2_left(self.block_1_1_left(x))
        ds1 = self.block_2_2_left(self.block_2_1_left(self.pool_1(ds0)))
        ds2 = self.block_3_2_left(self.block_3_1_left(self.pool_2(ds1)))
        x = self.block_4_2_left(self.block_4_1_left(self.pool_3(ds2)))
        x = self.block_3_2_right(self.block_3_1_right(torch.cat([self.upconv_3(x), ds2], dim=1)))
        x = self.block_2_2_right(self.block_2_1_right(torch.cat([self.upconv_2(x), ds1], dim=1)))
        features: Tensor = self.block_1_2_right(
            self.block_1_1_right(torch.cat([self.upconv_1(x), ds0], dim=1))
        )
        return features

    def forward_head(self, features: Tensor) -> Tensor:
        """The output layer: the 1×1×1 convolution from the last block's features to logits."""
        out: Tensor = self.conv1x1(features)
        return out
