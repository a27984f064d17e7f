"""Building blocks of the SE-normalisation U-Net and of the plain baseline U-Net.

The attribute names (``conv``, ``norm``, ``gamma``, ``beta``, ``conv1``, ``conv2``,
``res_conv``) are chosen so that the state-dict keys equal those of the original
implementation (Iantsen et al., HECKTOR 2020), which lets original checkpoints load
with a plain :meth:`~torch.nn.Module.load_state_dict`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hecktorseg.models.utils import is_exporting

__all__ = [
    "BasicConv3d",
    "Conv3d",
    "ResidualSEConv3d",
    "SEConv3d",
    "SENorm3d",
    "SEUpsample3d",
    "SEWeights3d",
]


def _cpu_bfloat16(x: Tensor) -> bool:
    """Whether a convolution of ``x`` would run in bfloat16 on the CPU (bfloat16 input or autocast)."""
    if x.device.type != "cpu":
        return False
    if x.dtype == torch.bfloat16:
        return True
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return bool(torch.is_autocast_enabled("cpu")) and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return bool(torch.is_autocast_cpu_enabled()) and torch.get_autocast_cpu_dtype() == torch.bfloat16


class Conv3d(nn.Conv3d):
    """:class:`torch.nn.Conv3d` that avoids a wrong bfloat16 kernel of torch on the CPU.

    On the CPU, torch's bfloat16 3-D convolution (checked with torch 2.13, oneDNN) returns
    wrong weight gradients, often inf or NaN, when the input depth is exactly 2 and the
    kernel is deeper than 1. That is the bottleneck of a 4-pooling U-Net trained on 32³
    patches, and it made bfloat16 training diverge. This layer computes such a convolution
    in float32 and returns bfloat16, as the plain layer would. Everywhere else (other
    depths, float32, float16, CUDA) it is :class:`torch.nn.Conv3d` unchanged, with the same
    parameters and state-dict keys.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Convolve ``input``; in float32 where the CPU bfloat16 kernel is wrong (see the class)."""
        if self.kernel_size[0] > 1 and _cpu_bfloat16(input) and input.shape[2] == 2:
            bias = None if self.bias is None else self.bias.float()
            with torch.autocast("cpu", enabled=False):
                out: Tensor = self._conv_forward(input.float(), self.weight.float(), bias)
            return out.to(torch.bfloat16)
        plain: Tensor = super().forward(input)
        return plain


class SEWeights3d(nn.Module):
    """Squeeze-and-excitation branch: global average pool → 1×1×1 conv (C→C/r) → ReLU → 1×1×1 conv (C/r→C).

    Both convolutions have a bias. The output has shape ``(N, C, 1, 1, 1)`` and is
    *not* passed through a gate; :class:`SENorm3d` applies sigmoid / tanh.

    Parameters
    ----------
    channels
        Number of channels ``C``.
    reduction
        Reduction ratio ``r``; ``C`` must be divisible by it.
    """

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        if reduction < 1 or channels % reduction != 0:
            raise ValueError(f"channels ({channels}) must be divisible by reduction ({reduction})")
        hidden = channels // reduction
        self.conv1 = nn.Conv3d(channels, hidden, kernel_size=1, bias=True)
        self.conv2 = nn.Conv3d(hidden, channels, kernel_size=1, bias=True)

    def excite(self, pooled: Tensor) -> Tensor:
        """Excitation logits ``(N, C)`` from already pooled features ``(N, C)``.

        The two 1×1×1 convolutions on a 1×1×1 volume are evaluated as matrix products.
        """
        hidden = F.relu(F.linear(pooled, self.conv1.weight.flatten(1), self.conv1.bias))
        return F.linear(hidden, self.conv2.weight.flatten(1), self.conv2.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Return the excitation logits of ``x`` (shape ``(N, C, 1, 1, 1)``)."""
        out = self.excite(x.mean(dim=(2, 3, 4)))
        return out[:, :, None, None, None]


class SENorm3d(nn.Module):
    """Squeeze-and-excitation normalisation (SE-norm).

    ``out = sigmoid(SE_γ(x)) · InstanceNorm(x) + tanh(SE_β(x))``, where the instance
    normalisation has no affine parameters (eps 1e-5) and both SE branches see the
    *un-normalised* input ``x``.

    Parameters
    ----------
    channels
        Number of channels.
    reduction
        Reduction ratio of the SE branches.
    """

    def __init__(self, channels: int, reduction: int = 2, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = float(eps)
        self.gamma = SEWeights3d(channels, reduction)
        self.beta = SEWeights3d(channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` and apply the input-dependent scale and shift.

        Computed in one fused pass: the per-channel mean and (biased) variance are
        taken once (the mean doubles as the SE global average pool), then
        ``out = x · (γ / σ) + (β − μ · γ / σ)`` — algebraically identical to
        ``γ · (x − μ) / σ + β`` with ``σ = sqrt(var + eps)`` (instance normalisation).
        """
        if is_exporting():
            return self._forward_exported(x)
        stats_input = x if x.dtype in (torch.float32, torch.float64) else x.float()
        var, mean = torch.var_mean(stats_input, dim=(2, 3, 4), correction=0)
        gamma = torch.sigmoid(self.gamma.excite(mean))
        beta = torch.tanh(self.beta.excite(mean))
        scale = gamma * torch.rsqrt(var + self.eps)
        shift = beta - mean * scale
        scale = scale.to(x.dtype)[:, :, None, None, None]
        shift = shift.to(x.dtype)[:, :, None, None, None]
        return torch.addcmul(shift, x, scale)

    def _forward_exported(self, x: Tensor) -> Tensor:
        """The same maths as graph runtimes run it fastest: instance normalisation, then scale and shift.

        Used while tracing (ONNX, TorchScript, OpenVINO conversion): ``instance_norm`` becomes
        one fused normalisation node (OpenVINO ``MVN``, ONNX ``InstanceNormalization``) where
        ``var_mean`` becomes three reductions; OpenVINO bf16 runs the network 12 % faster this way.
        """
        mean = x.mean(dim=(2, 3, 4))
        gamma = torch.sigmoid(self.gamma.excite(mean))[:, :, None, None, None]
        beta = torch.tanh(self.beta.excite(mean))[:, :, None, None, None]
        # torch.instance_norm, not F.instance_norm: the latter refuses a 1×1×1 input (the bottleneck
        # of a 16³ example), where the normalised value is simply 0.
        normed = torch.instance_norm(x, None, None, None, None, True, 0.0, self.eps, False)
        return normed * gamma + beta


class SEConv3d(nn.Module):
    """SE conv unit: Conv3d (with bias) → ReLU → :class:`SENorm3d` (activation before normalisation).

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    kernel_size
        Cubic kernel side; padding keeps the spatial size (``kernel_size // 2``).
    reduction
        Reduction ratio of the SE-norm branches.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, reduction: int = 2) -> None:
        super().__init__()
        self.conv = Conv3d(
            in_channels, out_channels, kernel_size=kernel_size, padding=kernel_size // 2, bias=True
        )
        self.norm = SENorm3d(out_channels, reduction)

    def forward(self, x: Tensor) -> Tensor:
        """Apply convolution, ReLU and SE-norm."""
        out: Tensor = self.norm(F.relu(self.conv(x), inplace=True))
        return out


class ResidualSEConv3d(nn.Module):
    """Residual SE unit: :class:`SEConv3d` plus a shortcut, no activation after the sum.

    The shortcut is the identity when the channel count is unchanged, otherwise a
    1×1×1 :class:`SEConv3d` (attribute ``res_conv``).

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    kernel_size
        Kernel side of the main unit.
    reduction
        Reduction ratio of the SE-norm branches.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, reduction: int = 2) -> None:
        super().__init__()
        self.conv1 = SEConv3d(in_channels, out_channels, kernel_size, reduction)
        self.res_conv: SEConv3d | None = (
            SEConv3d(in_channels, out_channels, 1, reduction) if in_channels != out_channels else None
        )

    def forward(self, x: Tensor) -> Tensor:
        """Return ``unit(x) + shortcut(x)``."""
        shortcut: Tensor = x if self.res_conv is None else self.res_conv(x)
        main: Tensor = self.conv1(x)
        return main + shortcut


class SEUpsample3d(nn.Module):
    """Feature-fusion branch: 1×1×1 :class:`SEConv3d` to ``out_channels``, then trilinear upsampling.

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    scale
        Integer upsampling factor (``align_corners=False``).
    reduction
        Reduction ratio of the SE-norm branches.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, reduction: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.conv = SEConv3d(in_channels, out_channels, 1, reduction)

    def forward(self, x: Tensor) -> Tensor:
        """Project ``x`` and upsample it by ``scale``."""
        x = self.conv(x)
        return F.interpolate(x, scale_factor=float(self.scale), mode="trilinear", align_corners=False)


class BasicConv3d(nn.Module):
    """Plain unit of the baseline U-Net: Conv3d (no bias) → InstanceNorm3d (affine) → ReLU.

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    kernel_size
        Cubic kernel side (same padding).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = Conv3d(
            in_channels, out_channels, kernel_size=kernel_size, padding=kernel_size // 2, bias=False
        )
        self.norm = nn.InstanceNorm3d(out_channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        """Apply convolution, instance normalisation and ReLU."""
        normed: Tensor = self.norm(self.conv(x))
        return F.relu(normed, inplace=True)
