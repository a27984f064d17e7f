"""The :class:`Predictor`: loaded models (once), ensembling, test-time mirroring, back-mapping.

The pieces live beside it: :mod:`~hecktorseg.inference.config` (:class:`PredictorConfig`),
:mod:`~hecktorseg.inference.ensemble` (the mean and variance over models × mirrorings),
:mod:`~hecktorseg.inference.case_prediction` (:class:`CasePrediction`, the mapping back onto
the CT grid) and :mod:`~hecktorseg.inference.preprocessing_choice`.
"""

from __future__ import annotations

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

from hecktorseg.errors import ConfigError, DataError
from hecktorseg.inference.backends import CompiledModel, RuntimeChoice, compile_model, select_runtime
from hecktorseg.inference.case_prediction import CasePrediction, map_to_ct_grid
from hecktorseg.inference.config import PredictorConfig, _make_config
from hecktorseg.inference.ensemble import MIRROR_AXES, Ensemble
from hecktorseg.inference.preprocessing_choice import (
    PreprocessingChoice,
    _config_key,
    _preprocess_from_metadata,
    apply_preprocessing_choice,
    preprocessing_name,
)
from hecktorseg.io import BBox, Case
from hecktorseg.models import SIZE_DIVISOR, load_checkpoint
from hecktorseg.models.sliding_window import sliding_window_predict
from hecktorseg.preprocessing import (
    PreprocessConfig,
    PreprocessedCase,
    preprocess_case,
    preprocess_images,
    stack_channels,
)
from hecktorseg.runtime import resolve_device, set_threads
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
        self.n_outputs: tuple[int, ...] = tuple(int(getattr(m, "n_classes", 0) or 0) for m in models)
        """Output channels of each model (0 where a model does not say)."""
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
        self.ensemble = Ensemble(self.models, self.model_names, tta=bool(cfg.tta), tta_batch=cfg.tta_batch)

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
        patches: list[Any] = []
        for path in items:
            loaded = load_checkpoint(path, map_location=map_location)
            models.append(loaded.model)
            patches.append((loaded.metadata.get("train") or {}).get("patch_size"))
            saved = _preprocess_from_metadata(loaded.metadata, str(path))
            if preprocess is None and loaded.kind != "original" and loaded.metadata.get("preprocess") is None:
                logger.warning(
                    "%s records no preprocessing (metadata.preprocess): predicting with the defaults "
                    "(%s mm, %s voxels), which give wrong masks if it was trained on another grid",
                    path,
                    "×".join(f"{v:g}" for v in saved.spacing),
                    "×".join(str(v) for v in saved.size),
                )
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
            # the patches or the grid the models were trained on; a larger input is covered by windows
            trained = patches[0] if patches[0] else configs[0][1].size
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
    def tta(self) -> bool:
        """Whether the 8 mirrorings are averaged too (the ensemble's setting)."""
        return self.ensemble.tta

    @tta.setter
    def tta(self, value: bool) -> None:
        self.ensemble.tta = bool(value)

    @property
    def n_members(self) -> int:
        """How many predictions are averaged per voxel (models × mirrorings)."""
        return self.ensemble.n_members

    def _direct(self, t: Tensor, with_var: bool) -> Tensor:
        """One pass over the whole input; sides that are not multiples of 16 are padded, then cropped."""
        spatial = tuple(int(s) for s in t.shape[2:])
        padded = tuple(-(-s // SIZE_DIVISOR) * SIZE_DIVISOR for s in spatial)
        if padded == spatial:
            return self.ensemble(t, with_var)
        big = torch.empty((1, t.shape[1], *padded), dtype=t.dtype)
        for c in range(t.shape[1]):
            big[0, c].fill_(float(t[0, c].min()))  # air on CT, background on PET
        big[:, :, : spatial[0], : spatial[1], : spatial[2]] = t
        out = self.ensemble(big, with_var)
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
                    lambda patch: self.ensemble(patch, return_variance),
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
        label). Post-processing (:func:`~hecktorseg.inference.postprocess_mask`)
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
        return map_to_ct_grid(
            pre,
            probs,
            variance,
            threshold=self.threshold,
            largest_component=self.largest_component,
            min_gtvn_volume=self.min_gtvn_volume,
            with_probabilities=with_probabilities,
        )

    def __repr__(self) -> str:
        n = len(self.models)
        models = f"{n} models (ensemble)" if n > 1 else "1 model"
        return (
            f"Predictor({models}, tta={self.tta}, device={self.device}, backend={self.runtime.backend}, "
            f"precision={self.runtime.precision}, threshold={self.threshold}, "
            f"preprocessing={self.preprocessing_name})"
        )
