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

Original checkpoints (the authors' state dicts) are handled in
:mod:`hecktorseg.models.original`; :func:`load_checkpoint` reads both kinds.
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
from hecktorseg.typing import PathLike

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_FORMAT_VERSION",
    "LoadedCheckpoint",
    "load_checkpoint",
    "read_checkpoint_file",
    "save_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "hecktorseg"
"""The ``format`` entry of every checkpoint this package writes, which tells it from the original's."""
CHECKPOINT_FORMAT_VERSION = 1
"""The ``format_version`` entry written; a checkpoint with a later (or no) version is refused."""
_RESERVED = frozenset({"format", "format_version", "hecktorseg_version", "model", "state_dict", "metadata"})

_TORCH_MAGIC: tuple[bytes, ...] = (b"PK\x03\x04", b"\x80")
"""How a file :func:`torch.load` can read begins: a zip archive (``torch.save`` since PyTorch 1.6)
or a pickle of protocol 2 or higher (the legacy format of older checkpoints, e.g. the original's)."""

_NOT_CHECKPOINT: tuple[tuple[bytes, str, str], ...] = (
    (
        b"version https://git-lfs",
        "a Git LFS pointer, not the file itself",
        "fetch the file with 'git lfs pull'",
    ),
    (b"<", "an HTML or XML page", "the download saved a web page; download the file itself"),
)
"""Known impostors (first bytes → what the file is, how to fix it)."""


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
    _check_magic(src)
    try:
        return torch.load(src, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"refused to load: the file holds objects other than tensors and plain values ({first[:200]})",
            path=src,
            hint="only load checkpoints from sources you trust; hecktorseg never unpickles arbitrary objects",
        ) from None
    except (
        RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError, IndexError
    ) as exc:  # fmt: skip
        raise CheckpointError(
            f"cannot read the checkpoint (truncated or not a PyTorch file?): {type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}",
            path=src,
            hint="re-download or re-save the file",
        ) from None


def _check_magic(src: Path) -> None:
    """Refuse a file that is neither of the two formats :func:`torch.load` reads, saying what it is."""
    try:
        with src.open("rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise CheckpointError(
            f"cannot read the checkpoint ({exc.strerror or exc})", path=src, hint="check its permissions"
        ) from None
    if head.startswith(_TORCH_MAGIC):
        return
    fix = "give a .pt file written by torch.save or 'hecktorseg train'"
    if not head:
        what = "the file is empty"
    else:
        known = next(((w, h) for start, w, h in _NOT_CHECKPOINT if head.lstrip().startswith(start)), None)
        if known is not None:
            what, fix = known
        elif all(32 <= b < 127 or b in b"\t\r\n" for b in head):
            what = f"a text file (it begins {head.decode('ascii').splitlines()[0][:40]!r})"
        else:
            what = f"it begins with the bytes {head[:8].hex(' ')}, neither a zip archive nor a pickle"
    raise CheckpointError(f"not a PyTorch checkpoint: {what}", path=src, hint=fix)


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


def load_checkpoint(path: PathLike, *, map_location: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load a checkpoint, ours or the original implementation's (detected from the contents).

    The one loader for users: a file written by :func:`save_checkpoint` (or ``hecktorseg
    train``) rebuilds its model from the stored name and arguments; an original HECKTOR
    2020 state dict is read as by :func:`~hecktorseg.models.load_original_checkpoint` (architecture inferred
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
    from hecktorseg.models.original import _from_original

    src = Path(path)
    obj = read_checkpoint_file(src, map_location=map_location)
    if _is_ours(obj):
        return _from_ours(obj, src, map_location)
    return _from_original(obj, src, map_location)


load_any_checkpoint = load_checkpoint
"""Former name of :func:`load_checkpoint` (internal; kept for callers inside the package)."""
