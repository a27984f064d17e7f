"""A small registry so configurations can name models by string."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from hecktorseg.errors import ConfigError

__all__ = ["available_models", "build_model", "model_hparams", "model_name", "register_model", "unwrap_model"]

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
        For an unknown name or invalid arguments.
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"unknown model {name!r}", hint=f"choose one of: {', '.join(available_models())}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid arguments for model {name!r}: {exc}") from exc


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
