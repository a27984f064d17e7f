"""What a training run actually ran with: device, precision, batch, augmentation device, speed options.

The configuration says what was *asked* (``device: auto``, ``amp: null``); :class:`RunInfo`
records what that *resolved to* on this machine, from the objects the trainer built. It goes
into the training log, the head of ``config.yaml`` (as comments, so the file still loads as a
:class:`~hecktorseg.training.TrainConfig`), every checkpoint's ``metadata["runtime"]`` and
``TrainResult.runtime``, so reports can state it
instead of assuming it.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import torch

__all__ = ["RunInfo", "apply_tf32", "precision_name"]

_PRECISIONS = {"torch.float16": "fp16", "torch.bfloat16": "bf16", "torch.float32": "fp32"}


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def precision_name(amp_dtype: torch.dtype | None) -> str:
    """``"fp32"``, ``"fp16"`` or ``"bf16"``: the autocast dtype that is used (``None`` = no autocast)."""
    return "fp32" if amp_dtype is None else _PRECISIONS.get(str(amp_dtype), str(amp_dtype))


def apply_tf32(enabled: bool, device: torch.device) -> bool | None:
    """Set TF32 for float32 convolutions and matrix products on CUDA; ``None`` (nothing set) elsewhere.

    ``True`` lets cuDNN convolutions use TF32 (torch's own default) and float32 matrix
    products use it too (``torch.set_float32_matmul_precision("high")``); ``False`` asks for
    full float32 in both. Returns the value now in force on CUDA.
    """
    if device.type != "cuda":
        return None
    import torch

    torch.backends.cudnn.allow_tf32 = enabled
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    return enabled


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        import torch

        try:
            return str(torch.cuda.get_device_name(device))
        except (RuntimeError, AssertionError):  # pragma: no cover - a driver problem
            return "CUDA device"
    return platform.processor() or platform.machine() or device.type


@attrs.frozen
class RunInfo:
    """The resolved runtime of a training run (what ran, not what was asked).

    Attributes
    ----------
    device
        The training device, e.g. ``"cuda:0"`` or ``"cpu"``.
    device_name
        Its name (the GPU model, or the CPU architecture).
    precision
        The autocast dtype used for the forward pass: ``"fp32"`` (no autocast), ``"fp16"``
        or ``"bf16"``.
    grad_scaler
        Whether float16 gradient scaling ran.
    batch_size
        Samples per step and process.
    world_size
        Number of training processes (DDP).
    augment_device
        Where rotation and mirroring ran: ``"cpu"`` (loader workers), the training
        device (e.g. ``"cuda:0"``), or ``"none"`` (no augmentation).
    channels_last
        Whether the channels-last-3d memory format was used.
    compiled
        Whether the network ran through ``torch.compile``.
    tf32
        TF32 for float32 convolutions / matrix products on CUDA; ``None`` on the CPU.
    cudnn_benchmark
        Whether cuDNN timed its convolution algorithms (``torch.backends.cudnn.benchmark``)
        on CUDA; ``None`` on the CPU.
    torch_version
        ``torch.__version__``.
    """

    device: str
    device_name: str
    precision: str
    grad_scaler: bool
    batch_size: int
    world_size: int = 1
    augment_device: str = "cpu"
    channels_last: bool = False
    compiled: bool = False
    tf32: bool | None = None
    cudnn_benchmark: bool | None = None
    torch_version: str = attrs.field(factory=_torch_version)

    @classmethod
    def resolve(
        cls,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        *,
        grad_scaler: bool,
        batch_size: int,
        world_size: int = 1,
        augment_device: str = "cpu",
        channels_last: bool = False,
        compiled: bool = False,
        tf32: bool | None = None,
        cudnn_benchmark: bool | None = None,
    ) -> RunInfo:
        """The record of a run from the objects that run it (device, autocast dtype, ...)."""
        return cls(
            device=str(device),
            device_name=_device_name(device),
            precision=precision_name(amp_dtype),
            grad_scaler=grad_scaler,
            batch_size=int(batch_size),
            world_size=int(world_size),
            augment_device=augment_device,
            channels_last=channels_last,
            compiled=compiled,
            tf32=tf32,
            cudnn_benchmark=cudnn_benchmark,
        )

    @property
    def on_gpu(self) -> bool:
        """Whether the run trained on CUDA."""
        return self.device.startswith("cuda")

    def hardware(self) -> str:
        """A short phrase such as ``"cuda:0 (NVIDIA H200), batch 2, fp16 autocast"`` or ``"CPU, batch 1, fp32"``."""
        where = f"{self.device} ({self.device_name})" if self.on_gpu else "CPU"
        if self.world_size > 1:
            where = f"{self.world_size} processes on {where}"
        precision = "fp32" if self.precision == "fp32" else f"{self.precision} autocast"
        if self.grad_scaler:
            precision += " with gradient scaling"
        return f"{where}, batch {self.batch_size}, {precision}"

    def describe(self) -> str:
        """One line for logs: :meth:`hardware` plus the augmentation device and the speed options."""
        options = [f"augmentation on {self.augment_device}"]
        if self.channels_last:
            options.append("channels-last-3d")
        if self.compiled:
            options.append("torch.compile")
        if self.tf32 is not None:
            options.append(f"TF32 {'on' if self.tf32 else 'off'}")
        if self.cudnn_benchmark:
            options.append("cuDNN autotuning")
        return f"{self.hardware()}; {', '.join(options)}"

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for YAML, JSON and checkpoint metadata)."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunInfo:
        """Inverse of :meth:`to_dict` (unknown keys are ignored, so newer records still load)."""
        names = {f.name for f in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def yaml_comment(self) -> str:
        """``# key: value`` lines heading ``config.yaml`` (comments keep the file a plain config)."""
        lines = ["# What this run resolved to on its machine (hecktorseg.training.RunInfo):"]
        lines += [f"#   {key}: {value}" for key, value in self.to_dict().items()]
        return "\n".join(lines) + "\n"
