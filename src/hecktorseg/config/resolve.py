"""One way to build a stage's settings: preset (or base) → YAML file → overrides."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from hecktorseg.config._base import load_yaml, merge
from hecktorseg.errors import ConfigError
from hecktorseg.typing import PathLike

__all__ = ["resolve_config"]

T = TypeVar("T")


def resolve_config(
    cls: type[T],
    *,
    preset: str | None = None,
    presets: Mapping[str, Callable[[], T]] | None = None,
    base: T | None = None,
    yaml: PathLike | None = None,
    section: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    where: str = "command line",
) -> T:
    """Settings of ``cls`` from, in increasing precedence: a preset (or ``base``), a YAML file, overrides.

    Every command of the command line builds its configuration with this function, so the
    precedence is the same everywhere.

    Parameters
    ----------
    cls
        The configuration class (e.g. :class:`~hecktorseg.training.TrainConfig`).
    preset
        Name of a preset in ``presets`` (e.g. ``"paper"``); ``None``: ``base``.
    presets
        Preset name → function building it, e.g. ``{"paper": TrainConfig.paper, "default": TrainConfig}``.
    base
        The starting point when no preset is named (default: ``cls()``), e.g. a default that
        depends on the dataset layout.
    yaml
        A YAML file whose fields override the preset (top level, or under ``section``).
    section
        Key of the file's top level holding the fields (e.g. ``"train"``), if present.
    overrides
        Field → value applied last (``None`` values are ignored: unset flags pass through).
    where
        Where the overrides come from, for error messages.

    Returns
    -------
    The resolved configuration (validated like :func:`~hecktorseg.config.from_dict`).

    Raises
    ------
    hecktorseg.errors.ConfigError
        An unknown preset, an unreadable or invalid YAML file, or an invalid override.
    """
    if preset is not None:
        known = dict(presets or {})
        if preset not in known:
            choices = " or ".join(f"preset={name}" for name in known) or "no preset"
            raise ConfigError(f"unknown preset {preset!r}", hint=f"use {choices}")
        config = known[preset]()
    else:
        config = base if base is not None else cls()
    if yaml is not None:
        config = load_yaml(cls, yaml, section=section, base=config)
    if overrides:
        config = merge(config, overrides, where=where)
    return config
