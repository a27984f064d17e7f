"""Where and how tensors are computed: device, precision, autocast, threads, the user cache folder.

Shared by training and inference (a bottom layer beside :mod:`hecktorseg.config`):

* :func:`resolve_device` turns ``"auto"`` / ``"cpu"`` / ``"cuda"`` / ``"cuda:N"`` into a
  :class:`torch.device` (under ``torchrun``, ``"auto"`` and ``"cuda"`` pick ``cuda:LOCAL_RANK``);
* :func:`resolve_precision` turns ``"auto"`` / ``"fp32"`` / ``"bf16"`` / ``"fp16"`` into a
  concrete precision for a device, :func:`autocast_dtype` into the autocast dtype and
  :func:`autocast` into the ``torch.autocast`` context (nothing for fp32);
* :func:`native_bf16` says whether the hardware computes bf16 natively (CPU: the
  ``avx512_bf16`` or ``amx_bf16`` flags; CUDA: compute capability >= 8.0);
* :func:`set_threads` sets torch's CPU threads; :func:`cache_dir` is the per-user cache
  (compiled inference models), never inside the package;
* :func:`import_openvino` imports OpenVINO with its usage telemetry off.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch

from hecktorseg.errors import ConfigError

__all__ = [
    "CACHE_ENV",
    "Precision",
    "PrecisionChoice",
    "autocast",
    "autocast_dtype",
    "cache_dir",
    "cpu_flags",
    "import_openvino",
    "native_bf16",
    "resolve_device",
    "resolve_precision",
    "set_threads",
]

Precision = Literal["fp32", "bf16", "fp16"]
"""A concrete compute precision (``fp16`` only on CUDA)."""

PrecisionChoice = Literal["auto", "fp32", "bf16", "fp16"]
"""A precision as asked for; ``"auto"`` is resolved by the caller's policy."""

CACHE_ENV = "HECKTORSEG_CACHE_DIR"
"""Environment variable that overrides :func:`cache_dir`."""

_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}
_ALIASES: dict[str, Precision] = {
    "fp32": "fp32",
    "float32": "fp32",
    "f32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "f16": "fp16",
}


def resolve_device(device: str | torch.device | None = "auto", *, local_rank: int = 0) -> torch.device:
    """The :class:`torch.device` for ``device``.

    Parameters
    ----------
    device
        ``"auto"`` / ``None`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
        or a :class:`torch.device`.
    local_rank
        The process's local rank under ``torchrun``: ``"auto"`` and a bare ``"cuda"`` then
        mean ``cuda:(local_rank mod device count)``.

    Raises
    ------
    ConfigError
        An unknown device, or CUDA asked for where none is available.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"unknown device {device!r}: {exc}", hint="use device 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                "device: CUDA was requested but no CUDA device is available", hint="use device 'cpu'"
            )
        index: int | None = dev.index
        if index is None:
            return torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return dev


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


_OPENVINO_TELEMETRY = "openvino_telemetry"
# OpenVINO's modules that import openvino_telemetry when they are imported (each falls back to its
# own no-op stub, openvino.tools.ovc.telemetry_stub, where that import fails).
_OPENVINO_TELEMETRY_USERS = (
    "openvino",
    "openvino.tools.ovc",
    "openvino.tools.ovc.utils",
    "openvino.tools.ovc.telemetry_utils",
    "openvino.tools.ovc.convert_impl",
)


def import_openvino() -> Any:
    """Import and return the ``openvino`` module with its usage telemetry off.

    Importing OpenVINO's model converter (which ``import openvino`` does) sets up Intel's
    usage telemetry: it writes ``~/intel/openvino_ga_cid`` and ``~/intel/stats`` and sends
    events to Google Analytics unless the user opted out. A tool for patient data does
    not phone home, and the documented opt-out (``opt_in_out --opt_out``) itself writes in
    ``~/intel``. So OpenVINO is imported here with ``openvino_telemetry`` hidden, which
    makes OpenVINO use its own no-op telemetry stub, the path it takes when that optional
    package is not installed; afterwards ``openvino_telemetry`` is importable again.

    Where OpenVINO was imported before (by the calling program), its telemetry is as that
    import left it.

    Raises
    ------
    ImportError
        OpenVINO is not installed.
    """
    if "openvino" in sys.modules or _OPENVINO_TELEMETRY in sys.modules:
        return importlib.import_module("openvino")
    sys.modules[_OPENVINO_TELEMETRY] = None  # type: ignore[assignment]  # "import" now raises ImportError
    try:
        ov = importlib.import_module("openvino")
        for name in _OPENVINO_TELEMETRY_USERS[1:]:  # the converter's modules, where this version has them
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    finally:
        del sys.modules[_OPENVINO_TELEMETRY]
    return ov


def _openvino_bf16() -> bool:
    try:
        ov = import_openvino()
    except ImportError:
        return False
    try:
        caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:
        return False
    return "BF16" in [str(c) for c in caps]


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 natively (not emulated, which is slower than fp32).

    CPU: the ``avx512_bf16`` or ``amx_bf16`` flag in ``/proc/cpuinfo``; where that file
    does not exist, OpenVINO's ``BF16`` optimisation capability (if OpenVINO is installed).
    CUDA: ``torch.cuda.is_bf16_supported()`` (compute capability >= 8.0).
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type != "cpu":  # mps, xpu, …: not measured
        return False
    flags = cpu_flags()
    if flags:
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    return _openvino_bf16()


def resolve_precision(
    precision: str, device: torch.device | str = "cpu", *, auto: Precision = "fp32"
) -> Precision:
    """A concrete precision for ``device``.

    Parameters
    ----------
    precision
        ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (``float32``, ``bfloat16``, ``float16``
        are accepted as well).
    device
        Where it runs: ``fp16`` is refused on the CPU.
    auto
        What ``"auto"`` means (the caller's measured policy).

    Raises
    ------
    ConfigError
        An unknown precision, or fp16 on the CPU.
    """
    if precision == "auto":
        chosen: Precision = auto
    else:
        try:
            chosen = _ALIASES[str(precision).lower()]
        except KeyError:
            raise ConfigError(
                f"unknown precision {precision!r}", hint="use precision 'auto', 'fp32', 'bf16' or 'fp16'"
            ) from None
    if chosen == "fp16" and torch.device(device).type == "cpu":
        raise ConfigError("precision fp16 is for CUDA only", hint="use precision 'bf16' or 'fp32' on the CPU")
    return chosen


def autocast_dtype(precision: Precision | None) -> torch.dtype | None:
    """The ``torch.autocast`` dtype of ``precision`` (``None`` for fp32)."""
    if precision is None or precision == "fp32":
        return None
    return _DTYPES[precision]


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: Precision | torch.dtype | None) -> Iterator[None]:
    """``torch.autocast`` on ``device`` for ``precision`` (a name or a dtype); nothing for fp32 / ``None``."""
    dtype = (
        precision if isinstance(precision, torch.dtype) or precision is None else autocast_dtype(precision)
    )
    if dtype is None or dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=torch.device(device).type, dtype=dtype):
        yield


def set_threads(num_threads: int | None) -> None:
    """``torch.set_num_threads(num_threads)``; ``None`` leaves torch's default.

    Raises
    ------
    ConfigError
        ``num_threads`` < 1.
    """
    if num_threads is None:
        return
    if num_threads < 1:
        raise ConfigError(
            f"num_threads must be >= 1, got {num_threads}",
            hint="give num_threads=N with N >= 1, or leave it unset for torch's choice",
        )
    torch.set_num_threads(int(num_threads))


def cache_dir(create: bool = False) -> Path:
    """The per-user cache folder: ``$HECKTORSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/hecktorseg``,
    else ``~/.cache/hecktorseg``.

    Parameters
    ----------
    create
        Create the folder (and its parents) if it does not exist.

    Raises
    ------
    ConfigError
        None of these is set and there is no home folder (``$HOME`` unset and a user id
        without a passwd entry, as in some containers).
    """
    override = os.environ.get(CACHE_ENV)
    base = override or os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base).expanduser() if base else Path.home() / ".cache"
    except (RuntimeError, KeyError):  # Path.home(): no $HOME and no passwd entry
        raise ConfigError(
            "no cache folder: $HOME is not set and this user has no home folder",
            hint=f"set ${CACHE_ENV} to a writable folder",
        ) from None
    path = root if override else root / "hecktorseg"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
