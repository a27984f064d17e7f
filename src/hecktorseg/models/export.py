"""Export a model to ONNX or TorchScript, checked against eager PyTorch.

* ``.onnx``: ``torch.onnx.export`` (the TorchScript-based exporter when available, else
  the ``torch.export``-based one), opset 17, input ``"image"`` ``(N, C, z, y, x)``, output
  ``"logits"``, with dynamic batch and spatial axes (sides must stay multiples of 16).
  Needs the optional ``onnx`` package (``pip install hecktorseg[export]``). The graph is
  validated with ``onnx.checker``; numbers are compared with ``onnxruntime`` when it is
  installed, else with ONNX's pure-Python reference evaluator for small models / inputs,
  else with the TorchScript trace the exporter is built from.
* ``.pt``: a traced TorchScript module (``torch.jit.load`` runs it without hecktorseg).

The exported graphs return logits; apply sigmoid (one channel) or softmax (several).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hecktorseg.errors import CheckpointError, ConfigError
from hecktorseg.io import atomic_path
from hecktorseg.models.checkpoint import load_checkpoint
from hecktorseg.models.registry import unwrap_model
from hecktorseg.models.utils import check_input_shape
from hecktorseg.typing import PathLike

__all__ = ["EXPORT_SUFFIXES", "export_model", "verify_export"]

logger = logging.getLogger(__name__)

EXPORT_SUFFIXES = (".onnx", ".pt")
"""File suffixes :func:`export_model` writes: ONNX, or a TorchScript archive."""
_ONNX_OPSET = 17
# Above this many (voxels × first-level filters), the pure-Python ONNX evaluator is too slow.
_REFERENCE_EVALUATOR_LIMIT = 32**3 * 8


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _resolve_model(checkpoint_or_model: nn.Module | PathLike) -> nn.Module:
    if isinstance(checkpoint_or_model, nn.Module):
        model = unwrap_model(checkpoint_or_model)
    else:
        model = load_checkpoint(checkpoint_or_model).model
    return model.float().cpu().eval()


def _example_input(model: nn.Module, shape: Sequence[int]) -> Tensor:
    dims = tuple(int(s) for s in shape)
    check_input_shape(dims, divisor=int(getattr(model, "size_divisor", 16)))
    in_channels = getattr(model, "in_channels", None)
    if isinstance(in_channels, int) and dims[1] != in_channels:
        raise ConfigError(
            f"export shape has {dims[1]} channels but the model takes {in_channels}",
            hint=f"use a shape like (1, {in_channels}, 32, 32, 32)",
        )
    generator = torch.Generator().manual_seed(0)
    return torch.randn(dims, generator=generator)


def _export_onnx(model: nn.Module, example: Tensor, dest: Path) -> None:
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "ONNX export needs the 'onnx' package", hint="pip install 'hecktorseg[export]'"
        ) from exc
    axes: dict[int, str] = {0: "batch", 2: "z", 3: "y", 4: "x"}
    kwargs: dict[str, Any] = {
        "input_names": ["image"],
        "output_names": ["logits"],
        "opset_version": _ONNX_OPSET,
        "dynamic_axes": {"image": axes, "logits": axes},
    }
    with atomic_path(dest) as tmp, _quiet(), torch.no_grad():
        try:
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, **kwargs)
        except TypeError:  # a torch without the 'dynamo' switch: legacy exporter is the default
            torch.onnx.export(model, (example,), str(tmp), **kwargs)
        except Exception as legacy_error:  # legacy exporter removed or failed: try torch.export
            logger.debug("legacy ONNX exporter failed (%s); trying dynamo=True", legacy_error)
            kwargs.pop("dynamic_axes")
            torch.onnx.export(model, (example,), str(tmp), dynamo=True, **kwargs)


def _export_torchscript(model: nn.Module, example: Tensor, dest: Path) -> None:
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(model, (example,), check_trace=False)  # type: ignore[no-untyped-call]
    with atomic_path(dest) as tmp, _quiet():
        torch.jit.save(traced, str(tmp))


def _run_onnx(path: Path, example: Tensor, model: nn.Module) -> tuple[str, np.ndarray[Any, Any]]:
    import onnx

    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise CheckpointError(f"the exported ONNX graph is invalid: {exc}", path=path) from None
    feed = {"image": example.numpy()}
    try:
        import onnxruntime
    except ImportError:
        onnxruntime = None
    if onnxruntime is not None:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return "onnxruntime", np.asarray(session.run(None, feed)[0])
    n_filters = int(getattr(model, "n_filters", 64))
    if example[0, 0].numel() * n_filters <= _REFERENCE_EVALUATOR_LIMIT:
        from onnx.reference import ReferenceEvaluator

        with _quiet():
            outputs: Any = ReferenceEvaluator(proto).run(None, feed)
        return "onnx.reference", np.asarray(outputs[0])
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(model, (example,), check_trace=False)  # type: ignore[no-untyped-call]
        return "torchscript trace (onnx.checker passed; onnxruntime not installed)", traced(example).numpy()


def verify_export(
    path: PathLike, model: nn.Module, example: Tensor, *, atol: float = 1e-4, rtol: float = 1e-4
) -> tuple[str, float]:
    """Run an exported file on ``example`` and compare it with eager ``model``.

    Parameters
    ----------
    path
        The ``.onnx`` or ``.pt`` file.
    model
        The eager model.
    example
        Input ``(N, C, z, y, x)``.
    atol, rtol
        Tolerances of the comparison.

    Returns
    -------
    tuple of (str, float)
        How the export was run and the maximum absolute difference from eager.

    Raises
    ------
    hecktorseg.errors.CheckpointError
        If the outputs differ beyond the tolerances or the graph is invalid.
    """
    src = Path(path)
    model = unwrap_model(model).float().cpu().eval()
    with torch.no_grad():
        expected = model(example).numpy()
    if src.suffix == ".onnx":
        method, actual = _run_onnx(src, example, model)
    else:
        with _quiet():
            loaded = torch.jit.load(str(src), map_location="cpu")  # type: ignore[no-untyped-call]
        with torch.no_grad():
            actual = loaded(example).numpy()
        method = "torchscript"
    if actual.shape != expected.shape:
        raise CheckpointError(f"exported output shape {actual.shape} != eager {expected.shape}", path=src)
    diff = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    if not np.allclose(actual, expected, atol=atol, rtol=rtol):
        raise CheckpointError(
            f"the exported model does not match eager PyTorch (max |Δ| = {diff:.3g}, checked with {method})",
            path=src,
        )
    logger.debug("export %s matches eager (max |Δ| = %.3g, %s)", src, diff, method)
    return method, diff


def export_model(
    checkpoint_or_model: nn.Module | PathLike,
    out_path: PathLike,
    *,
    shape: Sequence[int] = (1, 2, 32, 32, 32),
    verify: bool = True,
) -> Path:
    """Export a model (or the model of a checkpoint, ours or the original's) to ONNX or TorchScript.

    Parameters
    ----------
    checkpoint_or_model
        A model or a checkpoint path (read with :func:`~hecktorseg.models.load_checkpoint`).
    out_path
        Destination; the suffix picks the format: ``.onnx`` or ``.pt`` (TorchScript).
        Written atomically (an existing file is replaced; the CLI asks for ``--force``).
    shape
        Example input shape ``(N, C, z, y, x)`` used for tracing and the check
        (sides multiples of 16). ONNX keeps batch and spatial axes dynamic.
    verify
        Compare the exported model with eager PyTorch on a random input (see :func:`verify_export`).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    hecktorseg.errors.ConfigError
        Unknown suffix, bad shape, or ``onnx`` missing for ONNX export.
    hecktorseg.errors.CheckpointError
        Unreadable checkpoint, or the export does not match eager.
    """
    dest = Path(out_path)
    if dest.suffix not in EXPORT_SUFFIXES:
        raise ConfigError(
            f"unknown export format {dest.suffix or '(no suffix)'!r}",
            path=dest,
            hint="name the output *.onnx (ONNX) or *.pt (TorchScript)",
        )
    model = _resolve_model(checkpoint_or_model)
    example = _example_input(model, shape)
    if dest.suffix == ".onnx":
        _export_onnx(model, example, dest)
    else:
        _export_torchscript(model, example, dest)
    if verify:
        try:
            verify_export(dest, model, example)
        except CheckpointError:
            dest.unlink(missing_ok=True)
            raise
    return dest
