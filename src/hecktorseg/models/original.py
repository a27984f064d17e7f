"""The original implementation's checkpoints: reading, converting and writing its state dicts.

Original checkpoints are plain state dicts of the SE-norm U-Net (310 keys at
``n_filters=24``), possibly with a ``module.`` prefix from a multi-GPU wrapper;
:func:`load_original_checkpoint` infers ``n_filters``, ``reduction``, ``in_channels`` and
``n_classes`` from the tensor shapes.

Axis order: the original code read its NIfTI files with nibabel, so its arrays, network
inputs and convolution kernels are ordered (x, y, z); hecktorseg's arrays (SimpleITK) are
(z, y, x). Every 5-D weight of an original checkpoint therefore has its spatial dims 2 and
4 swapped on load (:func:`swap_kernel_axes`), so that the loaded network computes on a
(z, y, x) volume exactly what the original computed on the same volume in (x, y, z) order.

:func:`~hecktorseg.models.load_checkpoint` reads these files too (with ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hecktorseg.errors import CheckpointError, ConfigError
from hecktorseg.io import atomic_path
from hecktorseg.models.checkpoint import LoadedCheckpoint, _load_state, read_checkpoint_file, save_checkpoint
from hecktorseg.models.registry import unwrap_model
from hecktorseg.models.senorm_unet import SENormUNet
from hecktorseg.typing import PathLike

__all__ = [
    "convert_original_checkpoint",
    "load_original_checkpoint",
    "save_original_checkpoint",
    "swap_kernel_axes",
]

_ORIGINAL_FIRST_KEY = "block_1_1_left.conv1.conv.weight"
_ORIGINAL_SE_KEY = "block_1_1_left.conv1.norm.gamma.conv1.weight"
_ORIGINAL_HEAD_KEY = "conv1x1.weight"


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
        The model in eval mode. :func:`~hecktorseg.models.load_checkpoint` reads these files too (and ours); this
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
