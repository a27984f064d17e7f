"""Inference backends: run a network with torch, OpenVINO or ONNX Runtime, in fp32 or bf16.

:func:`select_runtime` resolves ``backend="auto"`` / ``precision="auto"`` against the
table of combinations verified accurate on trained weights (package data
``verified.json``, written from ``benchmarks/accuracy_bench.py``; see
:doc:`/performance`) and the machine (installed backends, native bf16).
:func:`compile_model` turns a torch module into a callable ``x -> float32 logits`` for
the chosen backend, once per process (an in-memory cache keyed by the weights), and,
for OpenVINO, once per machine (the converted model and its compiled blobs are kept
under :func:`hecktorseg.runtime.cache_dir`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs
import torch
from torch import Tensor, nn

from hecktorseg.errors import ConfigError, OutputError
from hecktorseg.inference._compiled import (
    _CONVERSIONS,
    _onnxruntime_model,
    _openvino_model,
    _TorchModel,
)
from hecktorseg.runtime import Precision, cache_dir, import_openvino, native_bf16, resolve_precision

__all__ = [
    "BACKENDS",
    "INSTALL_COMMANDS",
    "Backend",
    "BackendChoice",
    "CompiledModel",
    "RuntimeChoice",
    "VerifiedCombination",
    "backend_available",
    "clear_compiled_cache",
    "compile_model",
    "conversion_counts",
    "prepare_openvino_cache",
    "select_runtime",
    "verified_combinations",
]

logger = logging.getLogger(__name__)

Backend = Literal["torch", "openvino", "onnxruntime"]
"""A runtime that runs the networks (eager PyTorch, OpenVINO or ONNX Runtime)."""
BackendChoice = Literal["auto", "torch", "openvino", "onnxruntime"]
"""A :data:`Backend`, or ``"auto"`` for the verified choice of the device and precision."""
BACKENDS: tuple[Backend, ...] = ("torch", "openvino", "onnxruntime")
"""Every :data:`Backend`, in the order of :data:`Backend`."""

INSTALL_COMMANDS: dict[str, str] = {
    "torch": "pip install torch",
    "openvino": "pip install openvino",
    "onnxruntime": "pip install 'hecktorseg[onnxruntime]'",
}
"""How to install each backend (the CLI prints it when one is missing)."""

_MODULES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "openvino": ("openvino",),
    "onnxruntime": ("onnxruntime", "onnx"),
}


class CompiledModel(Protocol):
    """A network ready for inference: ``(N, C, z, y, x)`` float32 in, float32 logits out (CPU or device)."""

    def __call__(self, x: Tensor) -> Tensor: ...


@attrs.frozen
class VerifiedCombination:
    """One backend × precision checked on trained weights against torch fp32.

    Attributes
    ----------
    backend, precision
        The combination.
    passed
        Per-case mask Dice >= 0.995 and held-out mean Dice within 0.005 of torch fp32.
    native_bf16
        Only fast (and only chosen by ``auto``) where the CPU computes bf16 natively.
    seconds
        Measured seconds per 144³ forward pass at f = 24 on 2 threads (the ranking of ``auto``).
    worst_dice
        Worst per-case mask Dice against torch fp32 over the benchmark's models and cases.
    """

    backend: Backend
    precision: Precision
    passed: bool
    native_bf16: bool
    seconds: float
    worst_dice: float


@functools.lru_cache(maxsize=1)
def verified_combinations() -> tuple[VerifiedCombination, ...]:
    """The verified table shipped with the package (fastest first)."""
    text = resources.files("hecktorseg.inference").joinpath("verified.json").read_text(encoding="utf-8")
    rows = json.loads(text)["combinations"]
    combos = [
        VerifiedCombination(
            backend=r["backend"],
            precision=r["precision"],
            passed=bool(r["passed"]),
            native_bf16=bool(r["native_bf16"]),
            seconds=float(r["seconds"]),
            worst_dice=float(r["worst_dice"]),
        )
        for r in rows
    ]
    return tuple(sorted(combos, key=lambda c: c.seconds))


def backend_available(backend: str) -> bool:
    """Whether the Python packages of ``backend`` are installed."""
    return all(importlib.util.find_spec(m) is not None for m in _MODULES.get(backend, (backend,)))


def _import_backend(backend: str) -> Any:
    """Import the backend's main module or raise a :class:`ConfigError` with the install command."""
    try:
        if backend == "openvino":
            return import_openvino()  # with its telemetry off
        for name in _MODULES[backend][1:]:
            importlib.import_module(name)
        return importlib.import_module(_MODULES[backend][0])
    except ImportError:
        raise ConfigError(
            f"the {backend} inference backend is not installed",
            hint=f"install it with: {INSTALL_COMMANDS[backend]} (or use backend='torch')",
        ) from None


@attrs.frozen
class RuntimeChoice:
    """What runs the networks: backend, precision and device."""

    backend: Backend
    precision: Precision
    device: torch.device

    def __str__(self) -> str:
        return f"{self.backend} {self.precision} on {self.device}"


def _check_backend(backend: str) -> Backend:
    if backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend {backend!r}", hint="use backend 'auto', 'torch', 'openvino' or 'onnxruntime'"
        )
    return backend


def select_runtime(
    backend: str = "auto", precision: str = "auto", device: torch.device | str = "cpu"
) -> RuntimeChoice:
    """Resolve ``auto`` backend / precision for ``device``.

    On the CPU, ``auto`` takes the fastest combination of :func:`verified_combinations`
    that passed, whose backend is installed, that matches an explicit ``backend`` /
    ``precision``, and that needs native bf16 only where the CPU has it; with none left,
    torch fp32. On CUDA, only torch runs; ``auto`` precision is fp32 there (fp16 / bf16
    autocast on request).

    Raises
    ------
    ConfigError
        An unknown backend or precision, a backend other than torch on CUDA, fp16 on the
        CPU, bf16 with ONNX Runtime, or an explicit backend that is not installed.
    """
    dev = torch.device(device)
    if backend != "auto":
        _check_backend(backend)
    fixed: Precision | None = None if precision == "auto" else resolve_precision(precision, dev)
    if dev.type != "cpu":
        if backend not in ("auto", "torch"):
            raise ConfigError(
                f"backend {backend!r} runs on the CPU only",
                hint="use backend='torch' on a GPU, or device='cpu'",
            )
        return RuntimeChoice("torch", fixed or "fp32", dev)
    if backend == "onnxruntime" and fixed == "bf16":
        raise ConfigError(
            "ONNX Runtime has no bf16 convolutions on the CPU",
            hint="use precision='fp32' with onnxruntime, or backend='openvino' or backend='torch' for bf16",
        )
    if backend != "auto" and not backend_available(backend):
        _import_backend(backend)  # raises with the install command
    native = native_bf16("cpu")
    for combo in verified_combinations():
        if not combo.passed or (combo.native_bf16 and not native):
            continue
        if backend != "auto" and combo.backend != backend:
            continue
        if fixed is not None and combo.precision != fixed:
            continue
        if backend == "auto" and not backend_available(combo.backend):
            continue
        return RuntimeChoice(combo.backend, combo.precision, dev)
    chosen: Backend = "torch" if backend == "auto" else _check_backend(backend)
    return RuntimeChoice(chosen, fixed or "fp32", dev)


# -- compiled models ------------------------------------------------------------------------------

_LOCK = threading.Lock()
_COMPILED: OrderedDict[tuple[str, ...], CompiledModel] = OrderedDict()
_MAX_COMPILED = 32


def conversion_counts() -> dict[str, int]:
    """How many models each backend converted in this process (an in-process cache hit adds nothing)."""
    return dict(_CONVERSIONS)


def clear_compiled_cache() -> None:
    """Forget the models compiled in this process (the disk cache stays)."""
    with _LOCK:
        _COMPILED.clear()


def _class_source(cls: type) -> str:
    """The source code of ``cls`` (its qualified name where the source is not available)."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        return f"{cls.__module__}.{cls.__qualname__}"


def _fingerprint(model: nn.Module) -> str:
    """A hash of the architecture, the code of its modules, and the weights.

    The code counts because a converted model on disk is the traced ``forward``: after an
    upgrade that changes a ``forward`` (or the split of :func:`~hecktorseg.models.split_output_head`)
    the old conversion must not be reused.
    """
    digest = hashlib.sha256(type(model).__qualname__.encode())
    digest.update(repr(model).encode())
    for source in sorted(_class_source(cls) for cls in {type(m) for m in model.modules()}):
        digest.update(source.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:32]


def compile_model(
    model: nn.Module,
    choice: RuntimeChoice,
    *,
    cache: bool | Path | str = True,
    num_threads: int | None = None,
) -> CompiledModel:
    """A callable running ``model`` with ``choice``'s backend and precision (float32 logits out).

    Parameters
    ----------
    model
        The network (for the torch backend it is moved and prepared in place).
    choice
        From :func:`select_runtime`.
    cache
        Keep converted models on disk: ``True`` in :func:`hecktorseg.runtime.cache_dir`, a
        folder, or ``False`` for none. Within a process, a model with the same weights is
        converted only once whatever this says.
    num_threads
        CPU threads of OpenVINO / ONNX Runtime (default: ``torch.get_num_threads()``).

    Raises
    ------
    ConfigError
        The backend is not installed.
    """
    threads = int(num_threads or torch.get_num_threads())
    if choice.backend == "torch":
        _CONVERSIONS["torch"] += 1
        return _TorchModel(model, choice)
    key = _fingerprint(model)
    memo = (key, choice.backend, choice.precision, str(threads))
    with _LOCK:
        hit = _COMPILED.get(memo)
        if hit is not None:
            _COMPILED.move_to_end(memo)
            return hit
    disk: Path | None
    if cache is True:
        try:
            disk = cache_dir()
        except ConfigError as exc:  # no home folder: convert in memory only
            logger.warning("OpenVINO/ONNX: converted models not kept on disk (%s)", exc)
            disk = None
    elif cache is False:
        disk = None
    else:
        disk = Path(cache)
    compiled: CompiledModel
    if choice.backend == "openvino":
        compiled = _openvino_model(_import_backend("openvino"), model, key, choice.precision, threads, disk)
    else:
        if choice.precision != "fp32":
            raise ConfigError(
                "ONNX Runtime runs fp32 only here", hint="use precision='fp32' with onnxruntime"
            )
        _import_backend("onnxruntime")
        compiled = _onnxruntime_model(model, key, threads, disk)
    with _LOCK:
        _COMPILED[memo] = compiled
        while len(_COMPILED) > _MAX_COMPILED:
            _COMPILED.popitem(last=False)
    return compiled


def prepare_openvino_cache(
    models: Sequence[nn.Module],
    cache: Path | str | None = None,
    *,
    precisions: Sequence[Precision] = ("fp32", "bf16"),
) -> Path:
    """Convert ``models`` for OpenVINO into the disk cache, ahead of any prediction.

    A container image calls this while it is built (``hecktorseg container build`` writes the
    step into its Dockerfile), so each case it predicts reads the converted models instead of
    converting every model again (several seconds per model). Both precisions are prepared by
    default, because the machine that builds the image may lack the native bf16 of the one that
    runs it; the compiled kernels are machine-specific and are not prepared.

    Parameters
    ----------
    models
        The networks (e.g. ``load_checkpoint(path).model``).
    cache
        The cache folder (default :func:`hecktorseg.runtime.cache_dir`, i.e.
        ``$HECKTORSEG_CACHE_DIR`` where set).
    precisions
        OpenVINO precisions to prepare (``"fp32"``, ``"bf16"``).

    Returns
    -------
    pathlib.Path
        The cache folder.

    Raises
    ------
    ConfigError
        OpenVINO is not installed, or an unknown precision.
    OutputError
        The cache folder cannot be written.
    """
    folder = Path(cache) if cache is not None else cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-")  # noqa: SIM115
        probe.close()
    except OSError as exc:
        raise OutputError(
            f"{folder}: cannot write the OpenVINO cache here ({exc.strerror or exc})",
            hint="choose a writable folder (cache=... or $HECKTORSEG_CACHE_DIR)",
        ) from None
    ov = _import_backend("openvino")
    for precision in precisions:
        chosen = resolve_precision(precision, "cpu")  # fp16 is refused on the CPU
        for model in models:
            _openvino_model(ov, model, _fingerprint(model), chosen, torch.get_num_threads(), folder)
    return folder
