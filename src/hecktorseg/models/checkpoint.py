"""Checkpoints: our own self-describing format and the original implementation's state dicts.

Our format is a plain ``dict`` that :func:`torch.load` reads with ``weights_only=True``::

    {
        "format": "hecktorseg",
        "format_version": 1,
        "hecktorseg_version": "0.1.0",
        "model": {"name": "senorm_unet", "kwargs": {"in_channels": 2, "n_classes": 1, ...}},
        "state_dict": {...tensors...},
        "metadata": {...},          # e.g. "preprocess", "train" (plain dicts), epoch, metrics
        ...extra top-level entries (optimizer state, ...)
    }

Original checkpoints are plain state dicts of the SE-norm U-Net (310 keys at
``n_filters=24``), possibly with a ``module.`` prefix from a multi-GPU wrapper;
:func:`load_original_checkpoint` infers ``n_filters``, ``reduction``, ``in_channels`` and
``n_classes`` from the tensor shapes.

Axis order: the original code read its NIfTI files with nibabel, so its arrays, network
inputs and convolution kernels are ordered (x, y, z); hecktorseg's arrays (SimpleITK) are
(z, y, x). Every 5-D weight of an original checkpoint therefore has its spatial dims 2 and
4 swapped on load (:func:`swap_kernel_axes`), so that the loaded network computes on a
(z, y, x) volume exactly what the original computed on the same volume in (x, y, z) order.
"""

from __future__ import annotations

import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from hecktorseg._version import __version__
from hecktorseg.errors import CheckpointError, ConfigError
from hecktorseg.io import atomic_path
from hecktorseg.models.registry import build_model, model_hparams, model_name, probe_model, unwrap_model
from hecktorseg.models.senorm_unet import SENormUNet
from hecktorseg.typing import PathLike

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "LoadedCheckpoint",
    "convert_original_checkpoint",
    "load_checkpoint",
    "load_original_checkpoint",
    "read_checkpoint_file",
    "save_checkpoint",
    "save_original_checkpoint",
    "swap_kernel_axes",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "hecktorseg"
CHECKPOINT_FORMAT_VERSION = 1
_RESERVED = frozenset({"format", "format_version", "hecktorseg_version", "model", "state_dict", "metadata"})
_ORIGINAL_FIRST_KEY = "block_1_1_left.conv1.conv.weight"
_ORIGINAL_SE_KEY = "block_1_1_left.conv1.norm.gamma.conv1.weight"
_ORIGINAL_HEAD_KEY = "conv1x1.weight"


@attrs.frozen
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint.

    Attributes
    ----------
    model
        The model in eval mode on the requested device.
    metadata
        Our checkpoints: the saved ``metadata`` dict. Original checkpoints: a dict with
        ``"source": "original"`` and the inferred hyper-parameters.
    raw
        Everything read from the file (for ours the whole dict, for the original the state dict
        as stored, i.e. with its kernels still in the original (x, y, z) order).
    kind
        ``"hecktorseg"`` or ``"original"``.
    path
        The file read, if any.
    """

    model: nn.Module
    metadata: dict[str, Any]
    raw: dict[str, Any]
    kind: str = "hecktorseg"
    path: Path | None = None


def _plain(value: Any, where: str) -> Any:
    """Check that ``value`` is weights_only-loadable; paths become strings, tuples stay tuples."""
    if value is None or isinstance(value, (bool, int, float, str, Tensor)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise ConfigError(f"checkpoint entry {where} has a non-string key {key!r}")
            out[key] = _plain(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        items = [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    raise ConfigError(
        f"checkpoint entry {where} has type {type(value).__name__}, which torch.load(weights_only=True) "
        "cannot read back",
        hint="store plain values (dict, list, str, int, float, bool, None, tensors), e.g. via "
        "hecktorseg.config.to_dict",
    )


def save_checkpoint(
    path: PathLike,
    model: nn.Module,
    *,
    metadata: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` in the hecktorseg checkpoint format (atomically).

    Parameters
    ----------
    path
        Destination file (``.pt``); its folder is created; an existing file is replaced
        atomically (callers decide whether overwriting is allowed).
    model
        A registered model (``DataParallel`` / ``torch.compile`` wrappers are looked through).
    metadata
        Plain values to store under ``"metadata"`` (training stores ``"preprocess"`` and
        ``"train"`` config dicts there).
    extra
        More top-level entries (optimizer / scheduler state, epoch, ...); must not reuse
        the reserved keys ``format``, ``format_version``, ``hecktorseg_version``,
        ``model``, ``state_dict``, ``metadata``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    hecktorseg.errors.ConfigError
        If the model is not registered or a value cannot be loaded with ``weights_only=True``.
    """
    inner = unwrap_model(model)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "hecktorseg_version": __version__,
        "model": {"name": model_name(inner), "kwargs": _plain(model_hparams(inner), "model.kwargs")},
        "state_dict": {k: v.detach().cpu() for k, v in inner.state_dict().items()},
        "metadata": _plain(dict(metadata or {}), "metadata"),
    }
    for key, value in (extra or {}).items():
        if key in _RESERVED:
            raise ConfigError(f"extra checkpoint entry {key!r} would overwrite a reserved entry")
        payload[key] = _plain(value, key)
    dest = Path(path)
    with atomic_path(dest) as tmp:
        torch.save(payload, tmp)
    logger.debug("saved checkpoint %s", dest)
    return dest


def read_checkpoint_file(path: PathLike, *, map_location: str | torch.device = "cpu") -> Any:
    """Read a file with ``torch.load(weights_only=True)``, turning every failure into a clear error.

    Raises
    ------
    hecktorseg.errors.CheckpointError
        Missing, truncated or corrupt file, or one holding pickled objects other than
        tensors and plain containers (rejected for safety).
    """
    src = Path(path)
    if not src.is_file():
        what = "is a folder" if src.is_dir() else "is not a regular file" if src.exists() else "not found"
        raise CheckpointError(f"checkpoint file {what}", path=src, hint="give the path of the .pt file")
    try:
        return torch.load(src, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"refused to load: the file holds objects other than tensors and plain values ({first[:200]})",
            path=src,
            hint="only load checkpoints from sources you trust; hecktorseg never unpickles arbitrary objects",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"cannot read the checkpoint (truncated or not a PyTorch file?): {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}",
            path=src,
            hint="re-download or re-save the file",
        ) from None


def _is_ours(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT


def _from_ours(obj: dict[str, Any], path: Path | None, map_location: str | torch.device) -> LoadedCheckpoint:
    version = obj.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"unsupported hecktorseg checkpoint format version {version!r}",
            path=path,
            hint=f"this hecktorseg ({__version__}) reads format versions <= {CHECKPOINT_FORMAT_VERSION}; upgrade",
        )
    spec = obj.get("model")
    state = obj.get("state_dict")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(state, dict):
        raise CheckpointError("hecktorseg checkpoint lacks 'model' or 'state_dict'", path=path)
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise CheckpointError("hecktorseg checkpoint has invalid model kwargs", path=path)
    try:
        # shapes first, on the meta device: a declared size that does not match the stored
        # tensors (or is absurd) fails before the real model is allocated
        probe = probe_model(spec["name"], **kwargs)
        if probe is not None:
            _check_state(probe, state, path)
        model = build_model(spec["name"], **kwargs)
    except ConfigError as exc:
        raise CheckpointError(f"cannot rebuild the model: {exc.message}", path=path, hint=exc.hint) from None
    _load_state(model, state, path)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise CheckpointError("hecktorseg checkpoint metadata is not a dict", path=path)
    model.to(map_location).eval()
    return LoadedCheckpoint(model=model, metadata=metadata, raw=obj, kind="hecktorseg", path=path)


def _load_state(model: nn.Module, state: Mapping[str, Any], path: Path | None) -> None:
    _check_state(model, state, path)
    model.load_state_dict(dict(state), strict=True)


def _check_state(model: nn.Module, state: Mapping[str, Any], path: Path | None) -> None:
    """Keys and shapes of ``state`` match ``model`` (which may live on the meta device); values finite."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(unexpected[:3])}")
        raise CheckpointError(
            "the weights do not match the model: " + "; ".join(parts),
            path=path,
            hint="is this a checkpoint of a different model or hecktorseg version?",
        )
    for key, ref in expected.items():
        value = state[key]
        if not isinstance(value, Tensor):
            raise CheckpointError(f"entry {key!r} is not a tensor", path=path)
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"entry {key!r} has shape {tuple(value.shape)}, the model expects {tuple(ref.shape)}",
                path=path,
                hint="the declared model arguments do not match the stored weights; the file is "
                "damaged or was edited",
            )
    broken = [
        key
        for key, value in state.items()
        if isinstance(value, Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if broken:
        raise CheckpointError(
            f"{len(broken)} weight tensor(s) hold NaN or infinite values, e.g. {', '.join(broken[:3])}",
            path=path,
            hint="the checkpoint is broken (e.g. saved from a diverged run); use an earlier or another one",
        )


def _extract_state_dict(obj: Any) -> dict[str, Tensor] | None:
    """Find a state dict in ``obj`` (the dict itself, or under a usual wrapper key)."""
    if not isinstance(obj, dict):
        return None
    candidates: list[Any] = [obj]
    for key in ("state_dict", "model_state_dict", "model", "net"):
        if isinstance(obj.get(key), dict):
            candidates.append(obj[key])
    for cand in candidates:
        if cand and all(isinstance(k, str) for k in cand):
            keys = {k.removeprefix("module.") for k in cand}
            if _ORIGINAL_FIRST_KEY in keys:
                return {k.removeprefix("module."): v for k, v in cand.items()}
    return None


def swap_kernel_axes(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Swap the spatial dims 2 and 4 of every 5-D tensor: (x, y, z) kernels ↔ (z, y, x) kernels.

    Convolution weights ``(out, in, k, k, k)`` and transposed-convolution weights
    ``(in, out, k, k, k)`` both keep their spatial dims at 2..4; other tensors
    (biases, …) are returned unchanged. The map is its own inverse, so it converts
    original-order weights to hecktorseg's order and back. A network ``f`` with
    weights ``W`` then satisfies ``f_{swap(W)}(v) = f_W(vᵀ)ᵀ`` where ``ᵀ`` swaps the
    first and last spatial axes of the volume ``v``.

    Parameters
    ----------
    state
        A state dict.

    Returns
    -------
    dict
        A new state dict (contiguous tensors where swapped).
    """
    return {
        key: value.transpose(2, 4).contiguous() if isinstance(value, Tensor) and value.dim() == 5 else value
        for key, value in state.items()
    }


def _shape(state: Mapping[str, Any], key: str, path: Path | None) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, Tensor):
        raise CheckpointError(f"original checkpoint lacks tensor {key!r}", path=path)
    return tuple(value.shape)


def _from_original(obj: Any, path: Path | None, map_location: str | torch.device) -> LoadedCheckpoint:
    state = _extract_state_dict(obj)
    if state is None:
        raise CheckpointError(
            "not a hecktorseg checkpoint nor an original SE-norm U-Net state dict "
            f"(no '{_ORIGINAL_FIRST_KEY}' key)",
            path=path,
            hint="pass a file written by 'hecktorseg train' or by the original HECKTOR 2020 code",
        )
    first = _shape(state, _ORIGINAL_FIRST_KEY, path)
    se = _shape(state, _ORIGINAL_SE_KEY, path)
    head = _shape(state, _ORIGINAL_HEAD_KEY, path)
    if len(first) != 5 or first[2:] != (7, 7, 7) or len(se) != 5 or len(head) != 5:
        raise CheckpointError(
            f"unexpected shapes for an SE-norm U-Net: {_ORIGINAL_FIRST_KEY} {first}, "
            f"{_ORIGINAL_SE_KEY} {se}, {_ORIGINAL_HEAD_KEY} {head}",
            path=path,
        )
    n_filters, in_channels = first[0], first[1]
    hidden = se[0]
    if hidden < 1 or n_filters % hidden != 0:
        raise CheckpointError(f"cannot infer the SE reduction from {n_filters} filters / {hidden}", path=path)
    reduction = n_filters // hidden
    n_classes = head[0]
    model = SENormUNet(in_channels=in_channels, n_classes=n_classes, n_filters=n_filters, reduction=reduction)
    # the original's kernels are (x, y, z); ours see (z, y, x) volumes
    _load_state(model, swap_kernel_axes(state), path)
    model.to(map_location).eval()
    metadata: dict[str, Any] = {"source": "original", **model.hparams}
    return LoadedCheckpoint(model=model, metadata=metadata, raw=dict(state), kind="original", path=path)


def load_checkpoint(path: PathLike, *, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load a checkpoint, ours or the original implementation's (detected from the contents).

    The one loader for users: a file written by :func:`save_checkpoint` (or ``hecktorseg
    train``) rebuilds its model from the stored name and arguments; an original HECKTOR
    2020 state dict is read as by :func:`load_original_checkpoint` (architecture inferred
    from the tensor shapes, kernels turned to (z, y, x)). ``kind`` of the result says which.

    Parameters
    ----------
    path
        The checkpoint file (read with ``weights_only=True``).
    map_location
        Device for the tensors and the model.

    Returns
    -------
    LoadedCheckpoint
        Model in eval mode, metadata and raw contents.

    Raises
    ------
    hecktorseg.errors.CheckpointError
        If the file is unreadable, unsafe, or neither kind of checkpoint (or its keys /
        shapes do not fit the model).
    """
    src = Path(path)
    obj = read_checkpoint_file(src, map_location=map_location)
    if _is_ours(obj):
        return _from_ours(obj, src, map_location)
    return _from_original(obj, src, map_location)


load_any_checkpoint = load_checkpoint
"""Former name of :func:`load_checkpoint` (internal; kept for callers inside the package)."""


def load_original_checkpoint(path: PathLike, *, map_location: str | torch.device = "cpu") -> SENormUNet:
    """Load a state dict saved by the original SE-norm U-Net implementation.

    ``n_filters`` and ``in_channels`` come from ``block_1_1_left.conv1.conv.weight``
    (shape ``f × in × 7 × 7 × 7``), the reduction from
    ``block_1_1_left.conv1.norm.gamma.conv1.weight`` (``f/r × f × 1 × 1 × 1``) and
    ``n_classes`` from ``conv1x1.weight``. A ``module.`` prefix is stripped. The
    original's kernels are ordered (x, y, z); they are turned to hecktorseg's (z, y, x)
    order (see :func:`swap_kernel_axes`), so the model computes the original's function
    on hecktorseg's (z, y, x) arrays.

    Parameters
    ----------
    path
        The checkpoint file (read with ``weights_only=True``).
    map_location
        Device for the model.

    Returns
    -------
    SENormUNet
        The model in eval mode. :func:`load_checkpoint` reads these files too (and ours); this
        lower-level function is for code that wants the bare network of the authors' files.

    Raises
    ------
    hecktorseg.errors.CheckpointError
        If the file is unreadable, unsafe, or its keys / shapes are not those of the model.
    """
    src = Path(path)
    obj = read_checkpoint_file(src, map_location=map_location)
    model = _from_original(obj, src, map_location).model
    assert isinstance(model, SENormUNet)
    return model


def convert_original_checkpoint(
    src: PathLike,
    dest: PathLike,
    *,
    preprocess: Mapping[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Convert an original state dict into a hecktorseg checkpoint (kernels turned to (z, y, x)).

    The written checkpoint records the preprocessing the authors trained with
    (:meth:`~hecktorseg.preprocessing.PreprocessConfig.paper`) unless ``preprocess``
    says otherwise, so that :class:`~hecktorseg.inference.Predictor` uses it as it
    would for the original file.

    Parameters
    ----------
    src
        The original checkpoint (with or without ``module.``).
    dest
        The hecktorseg checkpoint to write (atomically).
    preprocess
        Plain preprocessing settings to store (default: the paper's).
    force
        Replace an existing ``dest``.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    hecktorseg.errors.CheckpointError
        ``src`` is not an original checkpoint, or ``dest`` exists and ``force`` is false.
    """
    from hecktorseg.config import to_dict
    from hecktorseg.preprocessing.config import PreprocessConfig

    source = Path(src)
    target = Path(dest)
    if target.exists() and not force:
        raise CheckpointError(
            "the destination exists", path=target, hint="choose another name or pass force=True"
        )
    loaded = _from_original(read_checkpoint_file(source), source, "cpu")
    config = dict(preprocess) if preprocess is not None else to_dict(PreprocessConfig.paper())
    metadata = {**loaded.metadata, "converted_from": source.name, "preprocess": config}
    return save_checkpoint(target, loaded.model, metadata=metadata)


def save_original_checkpoint(model: nn.Module, dest: PathLike) -> Path:
    """Write an SE-norm U-Net as an original-format state dict (kernels turned back to (x, y, z)).

    The inverse of :func:`load_original_checkpoint`: the original code (nibabel arrays)
    computes with the written file what ``model`` computes on hecktorseg's arrays.

    Raises
    ------
    hecktorseg.errors.ConfigError
        ``model`` is not an :class:`~hecktorseg.models.SENormUNet`.
    """
    inner = unwrap_model(model)
    if not isinstance(inner, SENormUNet):
        raise ConfigError(
            f"only the SE-norm U-Net has an original format, got {type(inner).__name__}",
            hint="save other models with save_checkpoint",
        )
    state = swap_kernel_axes({k: v.detach().cpu() for k, v in inner.state_dict().items()})
    target = Path(dest)
    with atomic_path(target) as tmp:
        torch.save(state, tmp)
    return target
