"""Fast, exact inference settings for the SE-norm U-Net.

:func:`resolve_inference_settings` / :func:`inference_context` / :func:`run_inference`
pick how a model runs for inference; ``precision="auto"`` is the fastest setting that
keeps the outputs *exact* (thresholded masks with Dice >= 0.999 against fp32 eager).

What the model does in every mode: the SE-norm layer is computed in one fused pass
(per-channel ``var_mean`` once, the mean doubling as the SE pool, the SE branches as
matrix products, then one ``addcmul``) instead of two pools + instance norm + multiply +
add; this is algebraically identical (checked in float64 against the textbook formula)
and also used for training.

Measured with ``benchmarks/bench_model.py`` (batch 1, 2 threads, torch 2.13 CPU, AMD EPYC
with AVX512-BF16, 144³ input, f = 24, 978 GFLOP per forward / 2934 GFLOP per forward +
backward, random weights). The development machine was shared with other jobs during
every run (load average 2–11 on 2 cores; the 4096² fp32 matmul reached only 58–86 of its
~310 GFLOP/s), so absolute times are 2–4× those of an idle machine (issue: ~14 s fp32) and
differences below ~30 % between fp32 modes are noise. Three runs (time in s, best of the
repetitions; peak = resident-memory growth during the run):

=================================  ======  ======  ======  =======  =======================
forward, 144³                      run 1   run 2   run 3   peak GB  agreement with fp32
=================================  ======  ======  ======  =======  =======================
fp32 eager ``no_grad``              57.8    30.0    33.2     2.9    reference
fp32, unfused SE-norm (original)    55.7    41.1    21.3     2.9    max|Δp| 1.5e-6, Dice 1
fp32 ``inference_mode``             43.8    44.7    28.9     2.9    identical
bf16 autocast                       19.5    25.0     —       1.5    max|Δp| 2.7e-2, Dice 0.981
bf16 autocast + channels-last-3d    16.2    21.7    17.8     1.5    max|Δp| 2.7e-2, Dice 0.981
=================================  ======  ======  ======  =======  =======================

Forward + backward at 144³ (run 2): fp32 101 s (6.1 GB), bf16 autocast 68 s (5.2 GB),
bf16 + channels-last-3d 82 s (5.0 GB). At 64³ (an earlier, less loaded run): fp32 4.0 s,
fp32 channels-last-3d 10.1 s, bf16 3.1 s, bf16 channels-last-3d 1.7 s.

One SE-norm layer at 144³ × 24 channels, interleaved, best of 5: fused 0.58 s, unfused
(two pools + instance norm + multiply + add) 0.76 s; max |Δ| 1e-6.

* bf16 autocast (+ channels-last-3d) is 1.5–3.5× faster than fp32 eager and halves the
  forward memory, but it is **not exact**: with random weights the thresholded masks agree
  only to Dice 0.97–0.98 (bf16 rounding of every convolution input accumulates through
  ~35 layers; the logit error is ≈ 10 % of the logit spread at 48³ and 144³ alike).
  Keeping the SE-norm outputs and residual sums in fp32 did not help (Dice 0.973 at 48³).
  It is therefore opt-in (``precision="bf16"``); re-check it on trained weights, where
  confident logits may well pass the Dice >= 0.999 bar.
* channels-last-3d gives nothing measurable in fp32 and made the fp32 training step slower.
* ``torch.compile`` (fp32, 64³): 10 % faster after 267 s of compilation on 2 cores — not
  worth it for a handful of volumes, so not a default.
* fp32 cannot reach the issue's 4× target: at the fp32 matmul peak the forward would still
  take ~3 s versus ~14 s eager; eager convolutions already run at ~60 % of matmul speed.

Chosen default (``"auto"``): fp32, contiguous memory format, ``torch.inference_mode``,
fused SE-norm — exact, and the fastest exact mode measured. On CUDA ``"auto"`` is fp32 as
well (not measured here).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Literal

import attrs
import torch
from torch import Tensor, nn

from hecktorseg.errors import ConfigError

__all__ = [
    "InferenceSettings",
    "Precision",
    "bf16_supported",
    "inference_context",
    "optimize_for_inference",
    "resolve_inference_settings",
    "run_inference",
]

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16"]

# The measured choices (see the module docstring): index True = CPU, False = other devices.
_AUTO_PRECISION: dict[bool, Literal["fp32", "bf16"]] = {True: "fp32", False: "fp32"}
_AUTO_CHANNELS_LAST: dict[str, bool] = {"fp32": False, "bf16": True}


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bf16 convolutions natively (CPU: AVX512-BF16 / AMX; CUDA: compute >= 8.0)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


@attrs.frozen
class InferenceSettings:
    """How a model runs for inference.

    Attributes
    ----------
    device
        Where the model and input live.
    precision
        ``"fp32"`` or ``"bf16"`` (bf16 autocast; the output is returned as float32).
    channels_last
        Use the channels-last-3d memory format for weights and input.
    """

    device: torch.device
    precision: Literal["fp32", "bf16"]
    channels_last: bool

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format for the model and the input."""
        return torch.channels_last_3d if self.channels_last else torch.contiguous_format

    def prepare(self, model: nn.Module) -> nn.Module:
        """Put ``model`` in eval mode, on the device and in the memory format (in place; returned)."""
        model.eval()
        moved: nn.Module = model.to(self.device)
        for param in list(moved.parameters()) + list(moved.buffers()):
            if param.ndim == 5:
                param.data = param.data.contiguous(memory_format=self.memory_format)
        return moved

    def prepare_input(self, x: Tensor) -> Tensor:
        """Move ``x`` to the device / memory format (float32)."""
        return x.to(device=self.device, dtype=torch.float32).contiguous(memory_format=self.memory_format)

    @contextlib.contextmanager
    def context(self) -> Iterator[InferenceSettings]:
        """``torch.inference_mode`` plus bf16 autocast when chosen."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            if self.precision == "bf16":
                stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
            yield self

    def run(self, model: nn.Module, x: Tensor) -> Tensor:
        """Run ``model`` on ``x`` (already prepared or not) and return float32 logits."""
        with self.context():
            out: Tensor = model(self.prepare_input(x))
            return out.float().contiguous()


def resolve_inference_settings(
    device: torch.device | str | None = None,
    precision: Precision = "auto",
    channels_last: bool | None = None,
) -> InferenceSettings:
    """Choose the inference settings for ``device``.

    Parameters
    ----------
    device
        Target device (default CPU).
    precision
        ``"auto"`` (the measured fastest exact choice, see the module docstring), ``"fp32"`` or ``"bf16"``.
    channels_last
        Force the channels-last-3d memory format on / off (default: the measured choice).

    Raises
    ------
    hecktorseg.errors.ConfigError
        For an unknown precision.
    """
    dev = torch.device("cpu" if device is None else device)
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"unknown precision {precision!r}", hint="use 'auto', 'fp32' or 'bf16'")
    chosen: Literal["fp32", "bf16"] = _AUTO_PRECISION[dev.type == "cpu"] if precision == "auto" else precision
    if channels_last is None:
        channels_last = _AUTO_CHANNELS_LAST[chosen] and dev.type == "cpu"
    return InferenceSettings(device=dev, precision=chosen, channels_last=bool(channels_last))


@contextlib.contextmanager
def inference_context(
    device: torch.device | str | None = None,
    precision: Precision = "auto",
    channels_last: bool | None = None,
) -> Iterator[InferenceSettings]:
    """Context manager for fast inference: ``inference_mode`` (+ bf16 autocast when chosen).

    Yields the :class:`InferenceSettings`; use ``settings.prepare(model)`` once and
    ``settings.run(model, x)`` per input (float32 logits out).
    """
    settings = resolve_inference_settings(device, precision, channels_last)
    with settings.context():
        yield settings


def optimize_for_inference(
    model: nn.Module,
    device: torch.device | str | None = None,
    precision: Precision = "auto",
    channels_last: bool | None = None,
) -> tuple[nn.Module, InferenceSettings]:
    """Prepare ``model`` for inference (eval, device, memory format) and return it with its settings."""
    settings = resolve_inference_settings(device, precision, channels_last)
    return settings.prepare(model), settings


def run_inference(
    model: nn.Module,
    x: Tensor,
    *,
    precision: Precision = "auto",
    channels_last: bool | None = None,
) -> Tensor:
    """Logits of ``model`` for ``x`` with the fastest exact settings for the model's device (float32 out)."""
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    settings = resolve_inference_settings(device, precision, channels_last)
    settings.prepare(model)
    return settings.run(model, x)
