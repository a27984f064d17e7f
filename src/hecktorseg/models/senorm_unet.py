"""The U-Net with squeeze-and-excitation normalisation (Iantsen, Visvikis & Hatt, HECKTOR 2020).

Layer by layer (``f`` filters, reduction ``r``):

* SE-norm: ``γ·IN(x) + β`` with ``γ = sigmoid(SE_γ(x))``, ``β = tanh(SE_β(x))``
  computed from the un-normalised ``x`` (:class:`~hecktorseg.models.layers.SENorm3d`).
* SE conv unit: Conv3d (bias) → ReLU → SE-norm; residual unit: SE conv unit + shortcut
  (identity or a 1×1×1 SE conv unit), no activation after the sum.
* Encoder (MaxPool3d(2) between levels): level 1 (``f``) a 7³ then a 3³ residual unit;
  levels 2–5 (``2f … 16f``) three 3³ residual units each.
* Decoder, levels 4 → 1: ConvTranspose3d(k 3, s 2, p 1, output padding 1) halving the
  channels, concatenation ``[upsampled, skip]``, two SE conv units.
* Feature fusion: decoder outputs of levels 4, 3, 2 → 1×1×1 SE conv unit to ``f``
  channels → trilinear ×8 / ×4 / ×2 upsampling, added to the level-1 decoder features
  after its first SE conv unit and before its second.
* Head: 1×1×1 conv ``f → n_classes``; :meth:`SENormUNet.forward` returns logits.

The attribute names reproduce the original implementation's state-dict keys (310 keys
for the default configuration), so its checkpoints load without renaming (apart from a
``module.`` prefix, handled by :func:`~hecktorseg.models.load_checkpoint`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hecktorseg.models.layers import ResidualSEConv3d, SEConv3d, SEUpsample3d
from hecktorseg.models.registry import register_model
from hecktorseg.models.utils import SIZE_DIVISOR, check_input_shape, is_exporting

__all__ = ["SENormUNet"]


def _upconv(in_channels: int, out_channels: int) -> nn.ConvTranspose3d:
    return nn.ConvTranspose3d(
        in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1, bias=True
    )


@register_model("senorm_unet")
class SENormUNet(nn.Module):
    """The HECKTOR 2020 winning SE-norm U-Net.

    With the defaults it has exactly 21,751,681 parameters (608,641 for ``n_filters=4``,
    2,423,937 for ``n_filters=8``).

    Parameters
    ----------
    in_channels
        Input channels (2: CT, PET).
    n_classes
        Output channels: 1 for binary segmentation (sigmoid), ``>= 2`` for softmax over
        background + labels (e.g. 3 for the 2022 GTVp / GTVn labels).
    n_filters
        Channels at the first level ``f`` (doubling per level: ``f … 16f``).
    reduction
        Reduction ratio ``r`` of the SE branches (``f`` must be divisible by it).

    Notes
    -----
    Input sides must be multiples of 16; :meth:`forward` checks this first and raises
    :class:`~hecktorseg.errors.DataError` otherwise.
    """

    size_divisor = SIZE_DIVISOR
    model_name: str

    def __init__(
        self, in_channels: int = 2, n_classes: int = 1, n_filters: int = 24, reduction: int = 2
    ) -> None:
        super().__init__()
        for label, value in (
            ("in_channels", in_channels),
            ("n_classes", n_classes),
            ("n_filters", n_filters),
        ):
            if int(value) < 1:
                raise ValueError(f"{label} must be >= 1, got {value}")
        if reduction < 1 or n_filters % reduction != 0:
            raise ValueError(f"n_filters ({n_filters}) must be divisible by reduction ({reduction})")
        self.in_channels = int(in_channels)
        self.n_classes = int(n_classes)
        self.n_filters = int(n_filters)
        self.reduction = int(reduction)
        f, r = self.n_filters, self.reduction

        # Encoder (registration order = the original's key order).
        self.block_1_1_left = ResidualSEConv3d(in_channels, f, 7, r)
        self.block_1_2_left = ResidualSEConv3d(f, f, 3, r)
        self.pool_1 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.block_2_1_left = ResidualSEConv3d(f, 2 * f, 3, r)
        self.block_2_2_left = ResidualSEConv3d(2 * f, 2 * f, 3, r)
        self.block_2_3_left = ResidualSEConv3d(2 * f, 2 * f, 3, r)
        self.pool_2 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.block_3_1_left = ResidualSEConv3d(2 * f, 4 * f, 3, r)
        self.block_3_2_left = ResidualSEConv3d(4 * f, 4 * f, 3, r)
        self.block_3_3_left = ResidualSEConv3d(4 * f, 4 * f, 3, r)
        self.pool_3 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.block_4_1_left = ResidualSEConv3d(4 * f, 8 * f, 3, r)
        self.block_4_2_left = ResidualSEConv3d(8 * f, 8 * f, 3, r)
        self.block_4_3_left = ResidualSEConv3d(8 * f, 8 * f, 3, r)
        self.pool_4 = nn.MaxPool3d(kernel_size=2, stride=2)
        self.block_5_1_left = ResidualSEConv3d(8 * f, 16 * f, 3, r)
        self.block_5_2_left = ResidualSEConv3d(16 * f, 16 * f, 3, r)
        self.block_5_3_left = ResidualSEConv3d(16 * f, 16 * f, 3, r)

        # Decoder with feature fusion from levels 4, 3, 2.
        self.upconv_4 = _upconv(16 * f, 8 * f)
        self.block_4_1_right = SEConv3d(16 * f, 8 * f, 3, r)
        self.block_4_2_right = SEConv3d(8 * f, 8 * f, 3, r)
        self.vision_4 = SEUpsample3d(8 * f, f, 8, r)
        self.upconv_3 = _upconv(8 * f, 4 * f)
        self.block_3_1_right = SEConv3d(8 * f, 4 * f, 3, r)
        self.block_3_2_right = SEConv3d(4 * f, 4 * f, 3, r)
        self.vision_3 = SEUpsample3d(4 * f, f, 4, r)
        self.upconv_2 = _upconv(4 * f, 2 * f)
        self.block_2_1_right = SEConv3d(4 * f, 2 * f, 3, r)
        self.block_2_2_right = SEConv3d(2 * f, 2 * f, 3, r)
        self.vision_2 = SEUpsample3d(2 * f, f, 2, r)
        self.upconv_1 = _upconv(2 * f, f)
        self.block_1_1_right = SEConv3d(2 * f, f, 3, r)
        self.block_1_2_right = SEConv3d(f, f, 3, r)

        self.conv1x1 = nn.Conv3d(f, n_classes, kernel_size=1, bias=True)

    @property
    def hparams(self) -> dict[str, Any]:
        """Constructor arguments (stored in checkpoints to rebuild the model)."""
        return {
            "in_channels": self.in_channels,
            "n_classes": self.n_classes,
            "n_filters": self.n_filters,
            "reduction": self.reduction,
        }

    def forward(self, x: Tensor) -> Tensor:
        """Segment ``x`` of shape ``(N, in_channels, z, y, x)``; returns logits ``(N, n_classes, z, y, x)``.

        Raises
        ------
        hecktorseg.errors.DataError
            If a spatial side is not a multiple of 16.
        """
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: Tensor) -> Tensor:
        """Everything up to the output layer: the ``n_filters`` full-resolution features of the last block.

        ``forward(x) == forward_head(forward_features(x))``. Inference in reduced precision
        runs this part in bfloat16 and :meth:`forward_head` in float32 (see
        :func:`~hecktorseg.models.split_output_head`).
        """
        if not is_exporting():
            check_input_shape(x.shape, divisor=self.size_divisor)
        ds0 = self.block_1_2_left(self.block_1_1_left(x))
        ds1 = self.block_2_3_left(self.block_2_2_left(self.block_2_1_left(self.pool_1(ds0))))
        ds2 = self.block_3_3_left(self.block_3_2_left(self.block_3_1_left(self.pool_2(ds1))))
        ds3 = self.block_4_3_left(self.block_4_2_left(self.block_4_1_left(self.pool_3(ds2))))
        x = self.block_5_3_left(self.block_5_2_left(self.block_5_1_left(self.pool_4(ds3))))

        x = self.block_4_2_right(self.block_4_1_right(torch.cat([self.upconv_4(x), ds3], dim=1)))
        sv4 = self.vision_4(x)
        x = self.block_3_2_right(self.block_3_1_right(torch.cat([self.upconv_3(x), ds2], dim=1)))
        sv3 = self.vision_3(x)
        x = self.block_2_2_right(self.block_2_1_right(torch.cat([self.upconv_2(x), ds1], dim=1)))
        sv2 = self.vision_2(x)

        x = self.block_1_1_right(torch.cat([self.upconv_1(x), ds0], dim=1))
        x = x + sv4 + sv3 + sv2
        features: Tensor = self.block_1_2_right(x)
        return features

    def forward_head(self, features: Tensor) -> Tensor:
        """The output layer: the 1×1×1 convolution from the last block's features to logits."""
        out: Tensor = self.conv1x1(features)
        return out
