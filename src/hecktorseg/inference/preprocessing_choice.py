"""Which preprocessing a checkpoint predicts with: the authors', hecktorseg's, or what it records.

:data:`PreprocessingChoice` names the choice, :func:`apply_preprocessing_choice` applies it to a
checkpoint's :class:`~hecktorseg.preprocessing.PreprocessConfig`, :func:`preprocessing_name` names
the result; the private helpers read a checkpoint's recorded preprocessing and compare the
preprocessing of ensemble members.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from hecktorseg.config import from_dict, to_dict
from hecktorseg.errors import CheckpointError, ConfigError
from hecktorseg.preprocessing import PAPER_PREPROCESS, PreprocessConfig

__all__ = ["PreprocessingChoice", "apply_preprocessing_choice", "preprocessing_name"]

# preprocessing fields that change the network input; the others (output compression, …) may differ
_IGNORED_CONFIG_FIELDS = frozenset({"compress"})

PreprocessingChoice = Literal["auto", "original", "hecktorseg"]
"""Which preprocessing a Predictor uses: ``"auto"`` (original-format checkpoints: the
authors'; ours: what the checkpoint records), ``"original"`` (the authors' crop, fill and
PET statistics) or ``"hecktorseg"`` (ours)."""


def apply_preprocessing_choice(
    config: PreprocessConfig, choice: PreprocessingChoice, *, original_checkpoint: bool
) -> PreprocessConfig:
    """The preprocessing a checkpoint predicts with under ``choice``.

    Only the fields of :data:`~hecktorseg.preprocessing.PAPER_PREPROCESS` (``legacy``,
    ``ct_fill``, ``pet_stats``) are switched; the grid (spacing, size) stays the checkpoint's.

    Parameters
    ----------
    config
        The checkpoint's preprocessing (the defaults for an original-format checkpoint).
    choice
        ``"auto"``: the authors' for an original-format checkpoint, else ``config``;
        ``"original"``: the authors'; ``"hecktorseg"``: hecktorseg's defaults.
    original_checkpoint
        Whether the checkpoint is in the original implementation's format.

    Raises
    ------
    ConfigError
        An unknown ``choice``.
    """
    if choice not in ("auto", "original", "hecktorseg"):
        raise ConfigError(
            f"unknown preprocessing {choice!r}", hint="use auto, original (the authors') or hecktorseg"
        )
    if choice == "original" or (choice == "auto" and original_checkpoint):
        return attrs.evolve(config, **PAPER_PREPROCESS)
    if choice == "hecktorseg":
        defaults = PreprocessConfig()
        return attrs.evolve(config, **{name: getattr(defaults, name) for name in PAPER_PREPROCESS})
    return config


def preprocessing_name(config: PreprocessConfig) -> str:
    """``"original"`` (the authors' crop, fill and PET statistics), ``"hecktorseg"`` or ``"custom"``."""
    values = {name: getattr(config, name) for name in PAPER_PREPROCESS}
    if values == PAPER_PREPROCESS:
        return "original"
    defaults = PreprocessConfig()
    if values == {name: getattr(defaults, name) for name in PAPER_PREPROCESS}:
        return "hecktorseg"
    return "custom"


def _config_key(config: PreprocessConfig) -> dict[str, Any]:
    return {k: v for k, v in to_dict(config).items() if k not in _IGNORED_CONFIG_FIELDS}


def _preprocess_from_metadata(metadata: dict[str, Any], where: str) -> PreprocessConfig:
    data = metadata.get("preprocess")
    if data is None:
        return PreprocessConfig()
    if not isinstance(data, dict):
        raise CheckpointError("metadata.preprocess is not a mapping", path=where, hint=_FIX_METADATA)
    try:
        return from_dict(PreprocessConfig, data, where="metadata.preprocess")
    except ConfigError as exc:
        raise CheckpointError(exc.message, path=where, hint=_FIX_METADATA) from None


_FIX_METADATA = (
    "the checkpoint records invalid preprocessing settings; re-save it with the settings it was "
    "trained with (the preprocessed dataset's manifest.json holds them), or use another checkpoint"
)
