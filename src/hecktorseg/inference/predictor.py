"""The :class:`Predictor`: loaded models (once), ensembling, test-time mirroring, back-mapping."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any, Literal, overload

import attrs
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
import torch
from torch import Tensor, nn

from hecktorseg.config import from_dict, to_dict
from hecktorseg.errors import CheckpointError, ConfigError, DataError
from hecktorseg.inference.postprocess import keep_largest_component, postprocess_mask
from hecktorseg.inference.sliding_window import sliding_window_predict
from hecktorseg.io import BBox, Case, Geometry, array_to_image
from hecktorseg.models import (
    SIZE_DIVISOR,
    InferenceSettings,
    Precision,
    load_any_checkpoint,
    probabilities,
    resolve_inference_settings,
)
from hecktorseg.preprocessing import (
    PreprocessConfig,
    PreprocessedCase,
    preprocess_case,
    preprocess_images,
    stack_channels,
    to_original_grid,
)
from hecktorseg.typing import PathLike

__all__ = [
    "MIRROR_AXES",
    "CasePrediction",
    "Predictor",
    "keep_largest_component",
    "resolve_device",
]  # keep_largest_component is re-exported from hecktorseg.inference.postprocess

logger = logging.getLogger(__name__)

MIRROR_AXES: tuple[tuple[int, ...], ...] = tuple(
    combo for r in range(4) for combo in itertools.combinations((2, 3, 4), r)
)
"""The 8 mirrorings of test-time augmentation, as tensor dims of (N, C, z, y, x) to flip (``()`` = none)."""

# preprocessing fields that change the network input; the others (output compression, …) may differ
_IGNORED_CONFIG_FIELDS = frozenset({"compress"})


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or ``None``) → CUDA if available else CPU; anything else as given.

    Raises
    ------
    ConfigError
        An unknown device, or CUDA requested without a GPU.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}", hint="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA was requested but no GPU is available", hint="use --device cpu")
    return dev


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


class Predictor:
    """Segment PET/CT with one model or an ensemble, optionally with test-time mirroring.

    The models are loaded and prepared once; :meth:`predict_array` works on
    normalised network input, :meth:`predict_case` / :meth:`predict_images`
    on raw images (preprocessing in memory with the checkpoint's settings,
    probabilities mapped back onto the CT grid, *then* thresholded).

    Parameters
    ----------
    models
        The networks (same input channels and number of output classes).
    preprocess
        Preprocessing settings (the grid the models expect). A ``"label"`` box
        source is replaced by ``"auto"`` (no ground truth at inference).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, … (where the models run).
    tta
        Average over the 8 mirrorings of the input.
    precision
        ``"auto"`` (the fastest exact setting of :mod:`hecktorseg.models`),
        ``"fp32"`` or ``"bf16"``.
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
        Where sliding-window outputs are accumulated (default: CPU).
    num_threads
        If given, ``torch.set_num_threads(num_threads)``.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        *,
        preprocess: PreprocessConfig | None = None,
        device: str | torch.device | None = "auto",
        tta: bool = False,
        precision: Precision = "auto",
        threshold: float = 0.5,
        largest_component: bool = False,
        window_size: Sequence[int] | None = None,
        overlap: float = 0.5,
        output_device: str | torch.device | None = "cpu",
        num_threads: int | None = None,
        min_gtvn_volume: float = 0.0,
    ) -> None:
        if not models:
            raise ConfigError("a Predictor needs at least one model")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"threshold must be in (0, 1), got {threshold}")
        if not min_gtvn_volume >= 0:
            raise ConfigError(
                f"the minimum GTVn volume must be >= 0 mm³, got {min_gtvn_volume}", hint="use 0 to keep all"
            )
        if num_threads is not None:
            if num_threads < 1:
                raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
            torch.set_num_threads(int(num_threads))
        cfg = preprocess or PreprocessConfig()
        if cfg.box_source == "label":
            logger.info("box_source 'label' is for training only; inference uses 'auto' (table, else PET)")
            cfg = attrs.evolve(cfg, box_source="auto")
        self.preprocess: PreprocessConfig = cfg
        self.device: torch.device = resolve_device(device)
        self.settings: InferenceSettings = resolve_inference_settings(self.device, precision)
        self.models: list[nn.Module] = [self.settings.prepare(m) for m in models]
        self.tta = bool(tta)
        self.threshold = float(threshold)
        self.largest_component = bool(largest_component)
        self.min_gtvn_volume = float(min_gtvn_volume)
        win = tuple(int(w) for w in window_size) if window_size is not None else tuple(cfg.size[::-1])
        if len(win) != 3 or min(win) < 1:
            raise ConfigError(f"window_size must be three positive sides (z, y, x), got {window_size}")
        self.window_size: tuple[int, int, int] = (win[0], win[1], win[2])
        self.overlap = float(overlap)
        self.output_device = torch.device(output_device) if output_device is not None else self.device

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_checkpoints(
        cls,
        paths: Sequence[PathLike] | PathLike,
        *,
        device: str | torch.device | None = "auto",
        tta: bool = False,
        precision: Precision = "auto",
        threshold: float = 0.5,
        largest_component: bool = False,
        preprocess: PreprocessConfig | None = None,
        window_size: Sequence[int] | None = None,
        overlap: float = 0.5,
        output_device: str | torch.device | None = "cpu",
        num_threads: int | None = None,
        min_gtvn_volume: float = 0.0,
    ) -> Predictor:
        """Load one or more checkpoints (ours or the original implementation's) into a Predictor.

        The preprocessing settings come from the checkpoints' ``metadata["preprocess"]``
        (the paper's defaults, 1 mm and 144³, for original checkpoints); all
        checkpoints of an ensemble must agree on them unless ``preprocess`` is given.
        The sliding window defaults to the grid the (first) model was trained on,
        so a ``preprocess`` with a larger ``size`` (e.g. a whole 2022 field of
        view) is predicted window by window. Other parameters as in :class:`Predictor`.

        Raises
        ------
        CheckpointError
            A file cannot be loaded.
        ConfigError
            The checkpoints disagree on preprocessing, or no path is given.
        """
        items = [paths] if isinstance(paths, (str, bytes)) or not isinstance(paths, Sequence) else list(paths)
        if not items:
            raise ConfigError("no checkpoint given", hint="pass at least one --model CKPT")
        dev = resolve_device(device)
        models: list[nn.Module] = []
        configs: list[tuple[str, PreprocessConfig]] = []
        for path in items:
            loaded = load_any_checkpoint(path, map_location=dev)
            models.append(loaded.model)
            configs.append((str(path), _preprocess_from_metadata(loaded.metadata, str(path))))
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
        if window_size is None:
            # the grid the models were trained on; a larger inference grid is then covered by windows
            trained = configs[0][1].size
            window_size = (int(trained[2]), int(trained[1]), int(trained[0]))
        logger.info("loaded %d model(s) on %s", len(models), dev)
        return cls(
            models,
            preprocess=preprocess,
            device=dev,
            tta=tta,
            precision=precision,
            threshold=threshold,
            largest_component=largest_component,
            window_size=window_size,
            overlap=overlap,
            output_device=output_device,
            num_threads=num_threads,
            min_gtvn_volume=min_gtvn_volume,
        )

    # -- arrays ----------------------------------------------------------------------------------
    @property
    def n_members(self) -> int:
        """Predictions averaged per voxel: models × mirrorings."""
        return len(self.models) * (len(MIRROR_AXES) if self.tta else 1)

    def _mean_and_var(self, x: Tensor, with_var: bool) -> Tensor:
        """Mean (and variance) over models × mirrorings for one window ``(1, 2, z, y, x)``.

        Returns ``(1, C, …)`` or, with ``with_var``, ``(1, 2C, …)`` = [mean, variance].
        """
        mirrors = MIRROR_AXES if self.tta else ((),)
        xin = self.settings.prepare_input(x)
        mean: Tensor | None = None
        m2: Tensor | None = None
        count = 0
        for model in self.models:
            for dims in mirrors:
                inp = torch.flip(xin, dims) if dims else xin
                with self.settings.context():
                    logits = model(inp)
                    prob = probabilities(logits.float())
                prob = torch.flip(prob, dims) if dims else prob
                prob = prob.float().contiguous()
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
        return preprocess_case(attrs.evolve(case, label_path=None), self.preprocess, bbox=bbox)

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
            f"Predictor({models}, tta={self.tta}, device={self.device}, "
            f"precision={self.settings.precision}, threshold={self.threshold})"
        )
