"""Sliding-window prediction with Gaussian weighting, for inputs larger than the network's grid.

Used by inference and by the validation of patch-trained models; exported from
:mod:`hecktorseg.inference`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from hecktorseg.errors import ConfigError

__all__ = ["gaussian_importance_map", "sliding_window_predict", "window_starts"]


def gaussian_importance_map(
    window: Sequence[int], *, sigma_scale: float = 0.125, device: torch.device | str = "cpu"
) -> Tensor:
    """Separable Gaussian weights over a window (peak 1 at the centre, sigma = ``sigma_scale`` × side).

    Centre voxels of a window see more context than its border, so overlapping
    windows are blended with these weights (as in nnU-Net). The weights never
    reach 0, so every voxel of the input gets a well-defined value.
    """
    axes = []
    for side in window:
        centre = (side - 1) / 2.0
        sigma = max(side * sigma_scale, 1e-3)
        coords = torch.arange(side, dtype=torch.float64)
        axes.append(torch.exp(-((coords - centre) ** 2) / (2 * sigma**2)))
    weights = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    weights = weights / weights.max()
    return weights.clamp_min(1e-6).to(device=device, dtype=torch.float32)


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start indices of windows of size ``window`` covering ``length`` with at least ``overlap`` overlap.

    The first window starts at 0, the last ends at ``length``; the others are evenly spread.
    """
    if window >= length:
        return [0]
    step = max(1, int(window * (1.0 - overlap)))
    n = math.ceil((length - window) / step) + 1
    return sorted({round(float(v)) for v in np.linspace(0, length - window, n)})


def sliding_window_predict(
    predict: Callable[[Tensor], Tensor],
    x: Tensor,
    window: Sequence[int],
    *,
    overlap: float = 0.5,
    sigma_scale: float = 0.125,
    window_device: torch.device | str | None = None,
    output_device: torch.device | str | None = None,
    pad_value: Sequence[float] | None = None,
) -> Tensor:
    """Run ``predict`` over overlapping windows of ``x`` and blend the outputs with Gaussian weights.

    Parameters
    ----------
    predict
        Maps a window ``(1, C_in, *window)`` to an output ``(1, C_out, *window)``
        (e.g. probabilities).
    x
        Input ``(1, C_in, z, y, x)`` (or ``(C_in, z, y, x)``) of any spatial size;
        axes shorter than the window are padded (and the padding cropped from the output).
    window
        Window size (z, y, x); for the U-Nets each side must be a multiple of 16.
    overlap
        Fraction of a window shared with its neighbour, in [0, 1).
    sigma_scale
        Gaussian sigma as a fraction of the window side.
    window_device
        Where windows are sent (the model's device); default ``x``'s device.
    output_device
        Where the blended output is accumulated (e.g. ``"cpu"`` when a large
        volume does not fit on the GPU); default ``x``'s device.
    pad_value
        Value per input channel for padding short axes; default each channel's minimum.

    Returns
    -------
    torch.Tensor
        ``(1, C_out, z, y, x)`` float32 on ``output_device``.
    """
    if not 0.0 <= overlap < 1.0:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    squeeze = x.dim() == 4
    if squeeze:
        x = x[None]
    if x.dim() != 5 or x.shape[0] != 1:
        raise ConfigError(
            f"sliding_window_predict needs one volume (1, C, z, y, x), got shape {tuple(x.shape)}"
        )
    win = tuple(int(w) for w in window)
    if len(win) != 3 or min(win) < 1:
        raise ConfigError(f"window must be three positive sides (z, y, x), got {window}")
    wdev = torch.device(window_device) if window_device is not None else x.device
    odev = torch.device(output_device) if output_device is not None else x.device
    spatial = tuple(int(s) for s in x.shape[2:])
    padded_shape = tuple(max(s, w) for s, w in zip(spatial, win, strict=True))
    if padded_shape != spatial:
        fill = (
            [float(v) for v in pad_value]
            if pad_value is not None
            else [float(x[0, c].min()) for c in range(x.shape[1])]
        )
        big = torch.empty((1, x.shape[1], *padded_shape), dtype=x.dtype, device=x.device)
        for c, value in enumerate(fill):
            big[0, c].fill_(value)
        big[:, :, : spatial[0], : spatial[1], : spatial[2]] = x
        x = big
    weights = gaussian_importance_map(win, sigma_scale=sigma_scale, device=odev)
    out: Tensor | None = None
    norm = torch.zeros(padded_shape, dtype=torch.float32, device=odev)
    starts = [window_starts(n, w, overlap) for n, w in zip(padded_shape, win, strict=True)]
    for z0 in starts[0]:
        for y0 in starts[1]:
            for x0 in starts[2]:
                sl = (slice(z0, z0 + win[0]), slice(y0, y0 + win[1]), slice(x0, x0 + win[2]))
                patch = x[:, :, sl[0], sl[1], sl[2]].to(wdev)
                pred = predict(patch).to(device=odev, dtype=torch.float32)
                if out is None:
                    out = torch.zeros((1, pred.shape[1], *padded_shape), dtype=torch.float32, device=odev)
                out[:, :, sl[0], sl[1], sl[2]] += pred * weights
                norm[sl] += weights
    assert out is not None
    out /= norm
    out = out[:, :, : spatial[0], : spatial[1], : spatial[2]].contiguous()
    return out[0] if squeeze else out
