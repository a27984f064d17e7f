"""Fixtures for the model tests: a functional re-statement of the original forward pass."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor


def _se_norm(sd: Mapping[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    """SE-norm exactly as described: both SE branches on the un-normalised x."""

    def excitation(branch: str) -> Tensor:
        pooled = x.mean(dim=(2, 3, 4), keepdim=True)
        hidden = F.relu(F.conv3d(pooled, sd[f"{branch}.conv1.weight"], sd[f"{branch}.conv1.bias"]))
        return F.conv3d(hidden, sd[f"{branch}.conv2.weight"], sd[f"{branch}.conv2.bias"])

    gamma = torch.sigmoid(excitation(f"{prefix}.gamma"))
    beta = torch.tanh(excitation(f"{prefix}.beta"))
    return gamma * F.instance_norm(x, eps=1e-5) + beta


def _se_conv(sd: Mapping[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    weight = sd[f"{prefix}.conv.weight"]
    x = F.relu(F.conv3d(x, weight, sd[f"{prefix}.conv.bias"], padding=weight.shape[-1] // 2))
    return _se_norm(sd, f"{prefix}.norm", x)


def _residual(sd: Mapping[str, Tensor], prefix: str, x: Tensor) -> Tensor:
    out = _se_conv(sd, f"{prefix}.conv1", x)
    shortcut = _se_conv(sd, f"{prefix}.res_conv", x) if f"{prefix}.res_conv.conv.weight" in sd else x
    return out + shortcut


def _up(sd: Mapping[str, Tensor], name: str, x: Tensor) -> Tensor:
    return F.conv_transpose3d(
        x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=2, padding=1, output_padding=1
    )


def _vision(sd: Mapping[str, Tensor], name: str, x: Tensor, scale: int) -> Tensor:
    x = _se_conv(sd, f"{name}.conv", x)
    return F.interpolate(x, scale_factor=scale, mode="trilinear", align_corners=False)


def original_forward(sd: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """The original network written out with functional ops on an (original-layout) state dict."""
    blocks = {level: 2 if level == 1 else 3 for level in range(1, 6)}
    skips = []
    for level in range(1, 6):
        if level > 1:
            x = F.max_pool3d(x, 2)
        for k in range(1, blocks[level] + 1):
            x = _residual(sd, f"block_{level}_{k}_left", x)
        skips.append(x)
    fused = []
    for level in (4, 3, 2):
        x = torch.cat([_up(sd, f"upconv_{level}", x), skips[level - 1]], dim=1)
        x = _se_conv(sd, f"block_{level}_2_right", _se_conv(sd, f"block_{level}_1_right", x))
        fused.append(_vision(sd, f"vision_{level}", x, 2 ** (level - 1)))
    x = torch.cat([_up(sd, "upconv_1", x), skips[0]], dim=1)
    x = _se_conv(sd, "block_1_1_right", x)
    x = x + fused[0] + fused[1] + fused[2]  # fusion after the first level-1 unit
    x = _se_conv(sd, "block_1_2_right", x)
    return F.conv3d(x, sd["conv1x1.weight"], sd["conv1x1.bias"])


@pytest.fixture
def reference_forward():
    """The functional reference forward pass."""
    return original_forward


def _random_state_dict(keys_and_shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in keys_and_shapes.items():
        fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else 4
        state[key] = torch.randn(shape, generator=generator) * (1.5 / fan_in**0.5)
    return state


@pytest.fixture
def random_state_dict():
    """Factory: random values (scaled by fan-in) for given keys → shapes, as an original checkpoint."""
    return _random_state_dict
