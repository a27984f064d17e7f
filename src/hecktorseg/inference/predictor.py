"""The :class:`Predictor`: loaded models (once), ensembling, test-time mirroring, back-mapping."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, overload

import attrs
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
import torch
from torch import Tensor, nn

from hecktorseg.config import from_dict, to_dict
from hecktorseg.errors import CheckpointError, ConfigError, DataError
from hecktorseg.inference.backends import (
    BackendChoice,
    CompiledModel,
    RuntimeChoice,
    compile_model,
    select_runtime,
)
from hecktorseg.inference.postprocess import postprocess_mask
from hecktorseg.inference.sliding_window import sliding_window_predict
from hecktorseg.io import BBox, Case, Geometry, array_to_image
from hecktorseg.models import SIZE_DIVISOR, load_checkpoint, probabilities
from hecktorseg.preprocessing import (
    PAPER_PREPROCESS,
    PreprocessConfig,
    PreprocessedCase,
    preprocess_case,
    preprocess_images,
    stack_channels,
    to_original_grid,
)
from hecktorseg.runtime import PrecisionChoice, resolve_device, set_threads
from hecktorseg.typing import PathLike

__all__ = [
    "MIRROR_AXES",
    "CasePrediction",
    "Predictor",
    "PredictorConfig",
    "PreprocessingChoice",
    "apply_preprocessing_choice",
    "preprocessing_name",
]

logger = logging.getLogger(__name__)

MIRROR_AXES: tuple[tuple[int, ...], ...] = tuple(
    combo for r in range(4) for combo in itertools.combinations((2, 3, 4), r)
)
"""The 8 mirrorings of test-time augmentation, as tensor dims of (N, C, z, y, x) to flip (``()`` = none)."""

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


@attrs.define
class CasePrediction:
    """A prediction on the original CT grid.

    Attributes
    ----------
    patient_id
        The case.
    mask
        uint8 label map with the CT's size, spacing, origin and direction
        (binary models: 0/1; multi-class: the argmax label).
    probabilities
        float32 probability map on the CT grid (binary: foreground; multi-class:
        a vector image with one component per class), if asked for.
    uncertainty
        float32 variance of the foreground probability over ensemble members ×
        mirrorings on the CT grid (multi-class: mean over the foreground
        classes), if asked for.
    reference
        The reference grid the network saw.
    bbox
        The box used.
    box_source
        Where the box came from (``"table"``, ``"pet"``, ``"given"``).
    """

    patient_id: str
    mask: sitk.Image
    probabilities: sitk.Image | None
    uncertainty: sitk.Image | None
    reference: Geometry
    bbox: BBox
    box_source: str


def _check_finite(prob: Tensor, name: str) -> None:
    """Refuse NaN or infinite probabilities (broken weights would otherwise give empty masks)."""
    if not bool(torch.isfinite(prob).all()):
        bad = int((~torch.isfinite(prob)).sum())
        raise CheckpointError(
            f"{name}: the model produced {bad} non-finite probabilit{'y' if bad == 1 else 'ies'} "
            "(NaN or infinity)",
            hint="its weights are broken (e.g. a diverged training run); use another checkpoint",
        )


def _argmax_uint8(channels: Sequence[npt.NDArray[np.floating[Any]]]) -> npt.NDArray[np.uint8]:
    """``np.argmax(np.stack(channels), 0)`` as uint8 (first maximum wins), without stacking.

    On a 512×512×200 CT grid this saves the stacked copy and the int64 index array (about 1 GB
    for three classes).
    """
    best = np.array(channels[0], dtype=np.float32, copy=True)
    mask = np.zeros(best.shape, dtype=np.uint8)
    for label, channel in enumerate(channels[1:], start=1):
        better = channel > best
        mask[better] = label
        np.maximum(best, channel, out=best)
    return mask


def _config_key(config: PreprocessConfig) -> dict[str, Any]:
    return {k: v for k, v in to_dict(config).items() if k not in _IGNORED_CONFIG_FIELDS}


def _preprocess_from_metadata(metadata: dict[str, Any], where: str) -> PreprocessConfig:
    data = metadata.get("preprocess")
    if data is None:
        return PreprocessConfig()
    if not isinstance(data, dict):
        raise CheckpointError(f"metadata['preprocess'] is not a mapping in {where}")
    return from_dict(PreprocessConfig, data, where=f"{where}: metadata.preprocess")


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
        raise ConfigError(f"{attribute.name} must be >= 1, got {value}")


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
        grid (0: keep all). See :mod:`hecktorseg.inference.postprocess`.
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
    min_gtvn_volume: float = attrs.field(default=0.0, converter=float, validator=_check_min_volume)
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


class Predictor:
    """Segment PET/CT with one model or an ensemble, optionally with test-time mirroring.

    The models are loaded, converted and compiled once (:func:`compile_model`);
    :meth:`predict_array` works on normalised network input, :meth:`predict_case` /
    :meth:`predict_images` on raw images (preprocessing in memory with the checkpoint's
    settings, probabilities mapped back onto the CT grid, *then* thresholded).

    Parameters
    ----------
    models
        The networks (same input channels and number of output classes).
    config
        How they run (:class:`PredictorConfig`; defaults when ``None``).
    preprocess
        Preprocessing settings (the grid the models expect). A ``"label"`` box
        source is replaced by ``"auto"`` (no ground truth at inference).
    model_names
        Names of the models in errors (default ``model 1``, ``model 2``, …;
        :meth:`from_checkpoints` uses the checkpoint paths).
    **overrides
        Fields of :class:`PredictorConfig` (``tta=True``, ``device="cpu"``, …) that
        replace those of ``config``.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        config: PredictorConfig | None = None,
        *,
        preprocess: PreprocessConfig | None = None,
        model_names: Sequence[str] | None = None,
        **overrides: Any,
    ) -> None:
        if not models:
            raise ConfigError("a Predictor needs at least one model")
        self.config: PredictorConfig = _make_config(config, overrides)
        cfg = self.config
        set_threads(cfg.num_threads)
        pre = preprocess or PreprocessConfig()
        if pre.box_source == "label":
            logger.info("box_source 'label' is for training only; inference uses 'auto' (table, else PET)")
            pre = attrs.evolve(pre, box_source="auto")
        self.preprocess: PreprocessConfig = pre
        self.device: torch.device = resolve_device(cfg.device)
        self.runtime: RuntimeChoice = select_runtime(cfg.backend, cfg.precision, self.device)
        cache: bool | str = cfg.cache
        self.models: list[CompiledModel] = [
            compile_model(
                m,
                self.runtime,
                cache=cache if isinstance(cache, bool) else Path(cache),
                num_threads=cfg.num_threads,
            )
            for m in models
        ]
        logger.info("inference: %d model(s), %s", len(self.models), self.runtime)
        self.tta = bool(cfg.tta)
        self.threshold = float(cfg.threshold)
        self.largest_component = bool(cfg.largest_component)
        self.window_size: tuple[int, int, int] = cfg.window_size or (pre.size[2], pre.size[1], pre.size[0])
        self.overlap = float(cfg.overlap)
        self.output_device = torch.device(cfg.output_device) if cfg.output_device is not None else self.device
        self.min_gtvn_volume = float(cfg.min_gtvn_volume)
        self.check_intensities = bool(cfg.check_intensities)
        names = list(model_names) if model_names is not None else []
        self.model_names: list[str] = [
            names[i] if i < len(names) else f"model {i + 1}" for i in range(len(self.models))
        ]

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_checkpoints(
        cls,
        paths: Sequence[PathLike] | PathLike,
        config: PredictorConfig | None = None,
        *,
        preprocess: PreprocessConfig | None = None,
        **overrides: Any,
    ) -> Predictor:
        """Load one or more checkpoints (ours or the original implementation's) into a Predictor.

        The preprocessing settings come from the checkpoints' ``metadata["preprocess"]``;
        an original-format checkpoint predicts by default with the preprocessing the
        authors trained with (:meth:`PreprocessConfig.paper
        <hecktorseg.preprocessing.PreprocessConfig.paper>`: 1 mm, 144³, rounded crop,
        0 HU outside the CT, PET statistics over the whole box), and ``preprocessing``
        switches that (see :func:`apply_preprocessing_choice`). All checkpoints of an
        ensemble must agree on the result unless ``preprocess`` is given.
        The sliding window defaults to the grid the (first) model was trained on,
        so a ``preprocess`` with a larger ``size`` (e.g. a whole 2022 field of
        view) is predicted window by window. ``config`` and ``overrides`` as in
        :class:`Predictor`.

        Raises
        ------
        CheckpointError
            A file cannot be loaded.
        ConfigError
            The checkpoints disagree on preprocessing, or no path is given.
        """
        items = [paths] if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence) else list(paths)
        if not items:
            raise ConfigError("no checkpoint given", hint="pass at least one checkpoint path")
        cfg = _make_config(config, overrides)
        dev = resolve_device(cfg.device)
        # non-torch backends convert on the CPU; torch loads straight onto its device
        map_location = dev if select_runtime(cfg.backend, cfg.precision, dev).backend == "torch" else "cpu"
        models: list[nn.Module] = []
        configs: list[tuple[str, PreprocessConfig]] = []
        for path in items:
            loaded = load_checkpoint(path, map_location=map_location)
            models.append(loaded.model)
            saved = _preprocess_from_metadata(loaded.metadata, str(path))
            chosen = apply_preprocessing_choice(
                saved, cfg.preprocessing, original_checkpoint=loaded.kind == "original"
            )
            configs.append((str(path), chosen))
        if preprocess is None:
            first_path, first = configs[0]
            for other_path, other in configs[1:]:
                if _config_key(other) != _config_key(first):
                    diff = sorted(k for k, v in _config_key(other).items() if _config_key(first).get(k) != v)
                    raise ConfigError(
                        f"checkpoints {first_path} and {other_path} were trained with different "
                        f"preprocessing ({', '.join(diff)})",
                        hint="ensemble only models trained on the same grid, or pass one preprocess config",
                    )
            preprocess = first
        if cfg.window_size is None:
            # the grid the models were trained on; a larger inference grid is then covered by windows
            trained = configs[0][1].size
            cfg = attrs.evolve(cfg, window_size=(int(trained[2]), int(trained[1]), int(trained[0])))
        logger.info(
            "loaded %d model(s) on %s; preprocessing: %s", len(models), dev, preprocessing_name(preprocess)
        )
        return cls(models, cfg, preprocess=preprocess, model_names=[str(p) for p in items])

    # -- arrays ----------------------------------------------------------------------------------
    @property
    def preprocessing_name(self) -> str:
        """``"original"`` (the authors' preprocessing), ``"hecktorseg"`` or ``"custom"``."""
        return preprocessing_name(self.preprocess)

    @property
    def n_members(self) -> int:
        """Predictions averaged per voxel: models × mirrorings."""
        return len(self.models) * (len(MIRROR_AXES) if self.tta else 1)

    def _mean_and_var(self, x: Tensor, with_var: bool) -> Tensor:
        """Mean (and variance) over models × mirrorings for one window ``(1, 2, z, y, x)``.

        The mirrorings go through each model ``tta_batch`` at a time, as one batch.
        Returns ``(1, C, …)`` or, with ``with_var``, ``(1, 2C, …)`` = [mean, variance].
        """
        mirrors = MIRROR_AXES if self.tta else ((),)
        step = max(1, self.config.tta_batch)
        groups = [mirrors[i : i + step] for i in range(0, len(mirrors), step)]
        mean: Tensor | None = None
        m2: Tensor | None = None
        count = 0
        for index, model in enumerate(self.models):
            for group in groups:
                batch = torch.cat([torch.flip(x, dims) if dims else x for dims in group], dim=0)
                probs = probabilities(model(batch).float())
                for k, dims in enumerate(group):
                    prob = probs[k : k + 1]
                    prob = (torch.flip(prob, dims) if dims else prob).to(x.device, torch.float32).contiguous()
                    _check_finite(prob, self.model_names[index])
                    count += 1
                    if mean is None:
                        mean = prob.clone()
                        m2 = torch.zeros_like(prob) if with_var else None
                        continue
                    delta = prob - mean
                    mean += delta / count
                    if m2 is not None:
                        m2 += delta * (prob - mean)
        assert mean is not None
        if with_var:
            assert m2 is not None
            return torch.cat([mean, m2 / count], dim=1)
        return mean

    def _direct(self, t: Tensor, with_var: bool) -> Tensor:
        """One pass over the whole input; sides that are not multiples of 16 are padded, then cropped."""
        spatial = tuple(int(s) for s in t.shape[2:])
        padded = tuple(-(-s // SIZE_DIVISOR) * SIZE_DIVISOR for s in spatial)
        if padded == spatial:
            return self._mean_and_var(t, with_var)
        big = torch.empty((1, t.shape[1], *padded), dtype=t.dtype)
        for c in range(t.shape[1]):
            big[0, c].fill_(float(t[0, c].min()))  # air on CT, background on PET
        big[:, :, : spatial[0], : spatial[1], : spatial[2]] = t
        out = self._mean_and_var(big, with_var)
        return out[:, :, : spatial[0], : spatial[1], : spatial[2]]

    @overload
    def predict_array(
        self, x: npt.ArrayLike | Tensor, *, return_variance: Literal[False] = False
    ) -> npt.NDArray[np.float32]: ...

    @overload
    def predict_array(
        self, x: npt.ArrayLike | Tensor, *, return_variance: Literal[True]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...

    def predict_array(
        self, x: npt.ArrayLike | Tensor, *, return_variance: bool = False
    ) -> npt.NDArray[np.float32] | tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Probabilities for normalised network input.

        Parameters
        ----------
        x
            ``(2, z, y, x)`` (or ``(1, 2, z, y, x)``) float input from
            :func:`hecktorseg.preprocessing.stack_channels`. Inputs larger than
            the window size along any axis go through
            :func:`sliding_window_predict`; other inputs run in one pass (sides
            that are not multiples of 16 are padded with each channel's minimum
            and the padding is cropped from the output).
        return_variance
            Also return the variance over models × mirrorings.

        Returns
        -------
        numpy.ndarray or tuple
            ``(C, z, y, x)`` float32 probabilities (C = the models' output channels),
            and with ``return_variance`` the ``(C, z, y, x)`` variance as well.
        """
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32)
        if t.dim() == 4:
            t = t[None]
        if t.dim() != 5 or t.shape[0] != 1:
            raise DataError(f"expected input (2, z, y, x), got shape {tuple(t.shape)}")
        spatial = tuple(int(s) for s in t.shape[2:])
        with torch.inference_mode():
            if any(s > w for s, w in zip(spatial, self.window_size, strict=True)):
                out = sliding_window_predict(
                    lambda patch: self._mean_and_var(patch, return_variance),
                    t,
                    self.window_size,
                    overlap=self.overlap,
                    window_device=self.device,
                    output_device=self.output_device,
                )
            else:
                out = self._direct(t, return_variance)
            result = out[0].detach().to("cpu", torch.float32).numpy().copy()
        if return_variance:
            c = result.shape[0] // 2
            return np.ascontiguousarray(result[:c]), np.ascontiguousarray(result[c:])
        return np.ascontiguousarray(result)

    # -- images and cases ------------------------------------------------------------------------
    def predict_case(
        self,
        case: Case,
        *,
        bbox: BBox | None = None,
        with_probabilities: bool = False,
        with_uncertainty: bool = False,
    ) -> CasePrediction:
        """Segment one case (its CT and PET files) and return the mask on the original CT grid.

        Parameters
        ----------
        case
            The case; its label (if any) is not read. Its box (from a table) is
            used according to ``preprocess.box_source`` (``auto``: the table's
            box if there is one, else found from the PET).
        bbox
            Use this box instead.
        with_probabilities, with_uncertainty
            Also map the probabilities / the ensemble×mirroring variance back.

        Raises
        ------
        DataError, GeometryError
            Unreadable images, images that do not overlap, a box outside the images.
        """
        return self.predict_preprocessed(
            self.prepare_case(case, bbox=bbox),
            with_probabilities=with_probabilities,
            with_uncertainty=with_uncertainty,
        )

    def prepare_case(self, case: Case, *, bbox: BBox | None = None) -> PreprocessedCase:
        """Read a case and resample it onto its reference grid with the models' preprocessing.

        The first half of :meth:`predict_case`, free of torch: :func:`predict_dataset`
        runs it in worker threads for the next cases while the models work.
        """
        return preprocess_case(
            attrs.evolve(case, label_path=None),
            self.preprocess,
            bbox=bbox,
            check_intensities=self.check_intensities,
        )

    def predict_images(
        self,
        ct: sitk.Image,
        pet: sitk.Image,
        *,
        bbox: BBox | None = None,
        table_bbox: BBox | None = None,
        patient_id: str = "",
        with_probabilities: bool = False,
        with_uncertainty: bool = False,
    ) -> CasePrediction:
        """Like :meth:`predict_case` for images in memory (``table_bbox``: the case's table box)."""
        pre = preprocess_images(
            ct, pet, None, self.preprocess, bbox=bbox, table_bbox=table_bbox, patient_id=patient_id
        )
        return self.predict_preprocessed(
            pre, with_probabilities=with_probabilities, with_uncertainty=with_uncertainty
        )

    def predict_preprocessed(
        self, pre: PreprocessedCase, *, with_probabilities: bool = False, with_uncertainty: bool = False
    ) -> CasePrediction:
        """Segment a case already on its reference grid (see :meth:`prepare_case`).

        The probabilities are mapped back onto ``pre.ct_geometry`` before they are
        thresholded (one channel) or arg-maxed (several): each class probability
        (ensemble members and mirrorings already averaged per class) is resampled
        onto the CT grid with the same linear interpolation, and the label of a CT
        voxel is the class with the highest resampled probability (ties: the lower
        label). Post-processing (:func:`~hecktorseg.inference.postprocess.postprocess_mask`)
        follows on the CT grid.
        """
        x = stack_channels(
            sitk.GetArrayViewFromImage(pre.ct),
            sitk.GetArrayViewFromImage(pre.pet),
            self.preprocess,
            pet_fov=pre.pet_fov,
        )
        variance: npt.NDArray[np.float32] | None = None
        if with_uncertainty:
            probs, variance = self.predict_array(x, return_variance=True)
        else:
            probs = self.predict_array(x)
        target = pre.ct_geometry
        channels = [
            sitk.GetArrayFromImage(to_original_grid(probs[c], pre.reference, target, kind="probability"))
            for c in range(probs.shape[0])
        ]
        if len(channels) == 1:
            mask = (channels[0] > self.threshold).astype(np.uint8)
        else:
            mask = _argmax_uint8(channels)
        mask = postprocess_mask(
            mask,
            target.spacing,
            largest_component=self.largest_component,
            min_gtvn_volume_mm3=self.min_gtvn_volume,
        )
        prob_image: sitk.Image | None = None
        if with_probabilities:
            if len(channels) == 1:
                prob_image = array_to_image(channels[0].astype(np.float32), target)
            else:
                prob_image = sitk.Compose(*[array_to_image(c.astype(np.float32), target) for c in channels])
        unc_image: sitk.Image | None = None
        if variance is not None:
            fg = variance if variance.shape[0] == 1 else variance[1:]
            unc_image = to_original_grid(
                fg.mean(axis=0).astype(np.float32), pre.reference, target, kind="probability"
            )
        return CasePrediction(
            patient_id=pre.patient_id,
            mask=array_to_image(mask, target),
            probabilities=prob_image,
            uncertainty=unc_image,
            reference=pre.reference,
            bbox=pre.bbox,
            box_source=pre.box_source,
        )

    def __repr__(self) -> str:
        n = len(self.models)
        models = f"{n} models (ensemble)" if n > 1 else "1 model"
        return (
            f"Predictor({models}, tta={self.tta}, device={self.device}, backend={self.runtime.backend}, "
            f"precision={self.runtime.precision}, threshold={self.threshold}, "
            f"preprocessing={self.preprocessing_name})"
        )
