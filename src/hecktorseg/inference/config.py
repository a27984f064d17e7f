"""How a :class:`~hecktorseg.inference.Predictor` runs: :class:`PredictorConfig` and its checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import torch

from hecktorseg.errors import ConfigError
from hecktorseg.inference.backends import BackendChoice
from hecktorseg.inference.postprocess import MIN_GTVN_VOLUME_MM3
from hecktorseg.inference.preprocessing_choice import PreprocessingChoice
from hecktorseg.runtime import PrecisionChoice

__all__ = ["PredictorConfig"]


def _window(value: Sequence[int] | None) -> tuple[int, int, int] | None:
    if value is None:
        return None
    win = tuple(int(w) for w in value)
    if len(win) != 3 or min(win) < 1:
        raise ConfigError(f"window_size must be three positive sides (z, y, x), got {value}")
    return (win[0], win[1], win[2])


def _check_threshold(instance: Any, attribute: Any, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"threshold must be in (0, 1), got {value}")


def _check_min_volume(instance: Any, attribute: Any, value: float) -> None:
    if not value >= 0:
        raise ConfigError(f"the minimum GTVn volume must be >= 0 mm³, got {value}", hint="use 0 to keep all")


def _check_preprocessing(instance: Any, attribute: Any, value: str) -> None:
    if value not in ("auto", "original", "hecktorseg"):
        raise ConfigError(
            f"unknown preprocessing {value!r}", hint="use auto, original (the authors') or hecktorseg"
        )


def _check_positive_or_none(instance: Any, attribute: Any, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(
            f"{attribute.name} must be >= 1, got {value}",
            hint=f"give {attribute.name}=N with N >= 1, or leave it unset for the default",
        )


@attrs.frozen
class PredictorConfig:
    """How a :class:`Predictor` runs its models.

    Attributes
    ----------
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, … (where the models run).
    backend
        ``"auto"`` (the fastest verified combination installed here, see
        :func:`~hecktorseg.inference.select_runtime`), ``"torch"``, ``"openvino"`` or
        ``"onnxruntime"``. ``backend="torch", precision="fp32"`` is the exact reference.
    precision
        ``"auto"``, ``"fp32"``, ``"bf16"`` (or ``"fp16"`` on CUDA).
    tta
        Average over the 8 mirrorings of the input.
    tta_batch
        Mirrorings run together in one batch (1: one after the other; 8: all at once,
        more memory).
    threshold
        Binary models: foreground where the probability is above this.
    largest_component
        Keep only the largest connected component of label 1 (GTVt / GTVp);
        lymph nodes (label 2) are never reduced to one component.
    min_gtvn_volume
        Remove GTVn (label 2) components smaller than this many mm³ on the CT
        grid (0: keep all; default :data:`~hecktorseg.inference.MIN_GTVN_VOLUME_MM3`,
        chosen on validation phantoms). See :func:`~hecktorseg.inference.remove_small_components`.
    window_size
        Sliding-window size (z, y, x) for inputs larger than it; default the
        preprocessing grid (``preprocess.size`` reversed).
    overlap
        Sliding-window overlap.
    output_device
        Where sliding-window outputs are accumulated (``None``: the model device).
    num_threads
        If given, the CPU threads of torch and of the backend.
    cache
        Keep converted models on disk (``True``: :func:`hecktorseg.runtime.cache_dir`;
        a folder; ``False``: none).
    check_intensities
        Refuse a case whose CT is not in Hounsfield units or whose PET is not in SUV
        or Bq/ml (e.g. swapped files); see :func:`hecktorseg.preprocessing.check_intensities`.
    preprocessing
        Which preprocessing :meth:`Predictor.from_checkpoints` gives the models
        (:data:`PreprocessingChoice`; see :func:`apply_preprocessing_choice`).
    """

    device: str = attrs.field(default="auto", converter=str)
    backend: BackendChoice = "auto"
    precision: PrecisionChoice = "auto"
    tta: bool = False
    tta_batch: int = attrs.field(default=1, validator=_check_positive_or_none)
    threshold: float = attrs.field(default=0.5, converter=float, validator=_check_threshold)
    largest_component: bool = False
    min_gtvn_volume: float = attrs.field(
        default=MIN_GTVN_VOLUME_MM3, converter=float, validator=_check_min_volume
    )
    window_size: tuple[int, int, int] | None = attrs.field(default=None, converter=_window)
    overlap: float = 0.5
    output_device: str | None = "cpu"
    num_threads: int | None = attrs.field(default=None, validator=_check_positive_or_none)
    cache: bool | str = True
    check_intensities: bool = True
    preprocessing: PreprocessingChoice = attrs.field(default="auto", validator=_check_preprocessing)


_CONFIG_FIELDS = frozenset(f.name for f in attrs.fields(PredictorConfig))


def _make_config(config: PredictorConfig | None, overrides: dict[str, Any]) -> PredictorConfig:
    unknown = sorted(set(overrides) - _CONFIG_FIELDS)
    if unknown:
        raise TypeError(f"unknown Predictor option(s): {', '.join(unknown)}")
    values: dict[str, Any] = {k: (str(v) if isinstance(v, torch.device) else v) for k, v in overrides.items()}
    if "device" in values and values["device"] is None:
        values["device"] = "auto"
    return attrs.evolve(config or PredictorConfig(), **values)
