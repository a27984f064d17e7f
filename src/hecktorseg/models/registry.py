"""A small registry so configurations can name models by string."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from hecktorseg.errors import ConfigError

__all__ = [
    "MAX_PARAMETERS",
    "available_models",
    "build_model",
    "model_hparams",
    "model_name",
    "model_parameters",
    "probe_model",
    "register_model",
    "unwrap_model",
]

MAX_PARAMETERS = 1_000_000_000
"""Largest model :func:`build_model` creates (4 GB of float32 weights; the paper's has 21.8 million).

A declared size beyond it (``n_filters: 1000000`` in a config or a checkpoint) is an
error before anything is allocated."""

logger = logging.getLogger(__name__)

_REGISTRY: dict[str, type[nn.Module]] = {}

M = TypeVar("M", bound=type[nn.Module])


def register_model(name: str) -> Callable[[M], M]:
    """Class decorator registering a model class under ``name``.

    The class gets a ``model_name`` attribute. To be saved with
    :func:`~hecktorseg.models.save_checkpoint` it must also expose an ``hparams``
    property returning the keyword arguments that rebuild it.

    Parameters
    ----------
    name
        Registry key (lower case, e.g. ``"senorm_unet"``).
    """

    def decorator(cls: M) -> M:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"a model named {name!r} is already registered ({existing.__qualname__})")
        _REGISTRY[name] = cls
        cls.model_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def available_models() -> list[str]:
    """Return the sorted names accepted by :func:`build_model`."""
    return sorted(_REGISTRY)


def model_parameters(name: str) -> frozenset[str] | None:
    """Keyword arguments the constructor of a registered model accepts.

    Lets a caller offer its full set of hyper-parameters (``n_filters``, ``reduction``,
    ...) and pass each model only those it takes.

    Returns
    -------
    frozenset of str or None
        The parameter names; ``None`` when any keyword is accepted (``**kwargs``) or
        ``name`` is not registered (:func:`build_model` then reports it).
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        return None
    params = inspect.signature(cls).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name.

    Parameters
    ----------
    name
        One of :func:`available_models` (``"senorm_unet"``, ``"baseline_unet"``).
    **kwargs
        Constructor arguments (``in_channels``, ``n_classes``, ``n_filters``, ...).

    Raises
    ------
    hecktorseg.errors.ConfigError
        For an unknown name, invalid arguments, or more than :data:`MAX_PARAMETERS`
        parameters (checked before anything is allocated).
    """
    probe_model(name, **kwargs)  # sizes checked on the meta device: nothing allocated yet
    cls = _REGISTRY[name]
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid arguments for model {name!r}: {exc}") from exc


def probe_model(name: str, **kwargs: Any) -> nn.Module | None:
    """Build a registered model on PyTorch's ``meta`` device: shapes only, no memory.

    Used to check declared sizes (at most :data:`MAX_PARAMETERS` parameters) and the
    shapes of a checkpoint's tensors before the real model is allocated.

    Returns
    -------
    torch.nn.Module or None
        The model on the meta device, or ``None`` for a (custom) model whose
        constructor cannot run there (it is then checked once built for real).

    Raises
    ------
    hecktorseg.errors.ConfigError
        For an unknown name, invalid arguments or a model that is too large.
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"unknown model {name!r}", hint=f"choose one of: {', '.join(available_models())}")
    try:
        with torch.device("meta"):
            model = cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"invalid arguments for model {name!r}: {exc}") from exc
    except (RuntimeError, NotImplementedError) as exc:  # e.g. a constructor that reads tensor values
        logger.debug("model %r cannot be built on the meta device (%s); size not checked", name, exc)
        return None
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > MAX_PARAMETERS:
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ConfigError(
            f"model {name!r} ({shown}) would have {n_params:,} parameters, more than the limit of "
            f"{MAX_PARAMETERS:,}",
            hint="check n_filters (the paper uses 24)",
        )
    return model


def unwrap_model(model: nn.Module) -> nn.Module:
    """Return the plain module inside ``DataParallel`` / ``DistributedDataParallel`` / ``torch.compile``."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        inner = getattr(model, "module", None)
        if isinstance(inner, nn.Module) and isinstance(
            model, (nn.DataParallel, nn.parallel.DistributedDataParallel)
        ):
            model = inner
            continue
        return model


def model_name(model: nn.Module) -> str:
    """Registry name of ``model`` (wrappers are looked through).

    Raises
    ------
    hecktorseg.errors.ConfigError
        If the model's class is not registered.
    """
    inner = unwrap_model(model)
    name = getattr(type(inner), "model_name", None)
    if not isinstance(name, str) or _REGISTRY.get(name) is not type(inner):
        raise ConfigError(
            f"model class {type(inner).__qualname__} is not registered",
            hint="decorate it with @hecktorseg.models.register_model('name')",
        )
    return name


def model_hparams(model: nn.Module) -> dict[str, Any]:
    """Keyword arguments that rebuild ``model`` with :func:`build_model`."""
    inner = unwrap_model(model)
    hparams = getattr(inner, "hparams", None)
    if not isinstance(hparams, dict):
        raise ConfigError(
            f"model class {type(inner).__qualname__} has no 'hparams' dict",
            hint="add a property 'hparams' returning its constructor arguments",
        )
    return dict(hparams)
