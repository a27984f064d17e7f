"""The official per-case scores of the HECKTOR 2020, 2021 and 2022 challenges, and their summaries.

2020
    Ground truth and prediction are resampled (nearest neighbour) onto a grid
    that starts at the box corner ``(x1, y1, z1)``, has the ground truth's
    spacing and covers the box (``round(box size / spacing)`` voxels per axis,
    identity direction); voxels outside an image are 0. Dice, precision and
    recall per case; an empty or missing prediction scores 0 on all three.
    Values other than 0/1 are an error. Ranking: mean Dice.
2021
    The same box resampling; Dice on the 0/1 arrays and HD95 (mm). An empty
    prediction scores Dice 0 and HD95 0; a missing one Dice 0 and HD95 ``inf``.
    Ranking: mean Dice and median HD95. ``official_spacing_quirk=True``
    reproduces the official script, which passed the spacing in (x, y, z)
    order to arrays in (z, y, x) order.
2022
    The prediction's spacing must equal the ground truth's; the prediction is
    resampled (nearest) onto the ground-truth grid. Per label (1 GTVp, 2 GTVn)
    the aggregated Dice ``DSCagg = 2 ΣTP / Σ(V_gt + V_pred)`` over all cases,
    volumes in mm³; the final score is the mean of the two. A missing (or
    invalid) prediction counts as an empty one: its ground-truth volume stays
    in the denominator.

Besides the official numbers every case also gets HD95, ASSD, surface Dice
and volumes computed with the correct spacing (see
:mod:`hecktorseg.evaluation.metrics` for their conventions).

The 2025/2026 rules are in :mod:`hecktorseg.evaluation.scoring_2025`; which
scorer, summary and missing-case rule an edition uses is its
:class:`~hecktorseg.evaluation.EditionRules` record in
:mod:`hecktorseg.evaluation.rules`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.evaluation import metrics
from hecktorseg.io import BBox, Geometry

__all__ = [
    "LABEL_NAMES_2022",
    "CaseScore",
    "aggregated_dice",
    "box_grid",
    "missing_score",
    "resample_to_box",
    "score_2020",
    "score_2021",
    "score_2022",
    "summarize",
]

logger = logging.getLogger(__name__)

LABEL_NAMES_2022: dict[int, str] = {1: "GTVp", 2: "GTVn"}
"""Label value → name of the 2022 labels (1 primary tumour, 2 lymph nodes)."""

_BINARY = frozenset({0, 1})
_LABELS_2022 = frozenset({0, 1, 2})

Status = Literal["ok", "empty", "missing", "invalid"]


@attrs.define
class CaseScore:
    """The scores of one case.

    Attributes
    ----------
    patient_id
        The case.
    status
        ``"ok"``; ``"empty"`` (the prediction has no foreground in the scored
        region); ``"missing"`` (no prediction file); ``"invalid"`` (the
        prediction could not be used: wrong values, wrong spacing, unreadable —
        scored like a missing case, see ``message``).
    metrics
        Metric name → value. 2020/2021: ``dice``, ``precision``, ``recall``,
        ``hd95``, ``assd``, ``surface_dice``, ``volume_gt_mm3``,
        ``volume_pred_mm3``. 2022: the same per label with a ``_GTVp`` /
        ``_GTVn`` suffix plus ``tp_mm3_<label>``, and ``dice`` (the mean
        over the labels present in the ground truth or the prediction).
    message
        Why a case is ``invalid`` / ``missing`` (empty otherwise).
    """

    patient_id: str
    status: Status
    metrics: dict[str, float] = attrs.field(factory=dict)
    message: str = ""


# -- grids --------------------------------------------------------------------------------------------
def box_grid(bbox: BBox, spacing: Sequence[float]) -> Geometry:
    """The scoring grid of 2020/2021: origin ``(x1, y1, z1)``, the given (x, y, z) spacing, covering the box.

    The size per axis is ``round((upper - lower) / spacing)`` (at least 1), as in
    the organisers' script; the direction is the identity.
    """
    sp = np.asarray([float(s) for s in spacing], dtype=np.float64)
    size = np.maximum(np.round(bbox.size / sp), 1).astype(int)
    return Geometry(size=tuple(int(s) for s in size), spacing=tuple(sp), origin=tuple(bbox.lower))


def _resample_nearest(image: sitk.Image, reference: Geometry) -> sitk.Image:
    return sitk.Resample(
        image, reference.empty_image(sitk.sitkUInt8), sitk.Transform(), sitk.sitkNearestNeighbor, 0.0
    )


def resample_to_box(image: sitk.Image, bbox: BBox, spacing: Sequence[float]) -> npt.NDArray[np.uint8]:
    """Resample a label image (nearest neighbour) onto :func:`box_grid`; returns the (z, y, x) array.

    Voxels of the box outside ``image`` are 0.
    """
    out = _resample_nearest(image, box_grid(bbox, spacing))
    array: npt.NDArray[np.uint8] = sitk.GetArrayFromImage(out).astype(np.uint8)
    return array


def _check_values(image: sitk.Image, allowed: Collection[int], what: str, patient_id: str) -> None:
    array = sitk.GetArrayViewFromImage(image)
    lo, hi = min(allowed), max(allowed)
    if (
        np.issubdtype(array.dtype, np.integer)
        and set(range(lo, hi + 1)) == set(allowed)
        and array.size
        and lo <= int(array.min())
        and int(array.max()) <= hi
    ):
        return  # integers within a contiguous allowed range: no need for the (slow) set of values
    values = {int(v) for v in np.unique(array)}
    if np.issubdtype(array.dtype, np.floating) and not np.array_equal(array, np.round(array)):
        raise DataError(
            f"{what} of case {patient_id!r} holds non-integer values",
            hint="write label maps (0 background, 1 tumour, …), not probabilities",
        )
    bad = sorted(values - set(allowed))
    if bad:
        raise DataError(
            f"{what} of case {patient_id!r} holds values {bad} outside the allowed set {sorted(allowed)}",
            hint="threshold / remap the labels for this edition's rules",
        )


def _check_same_grid(pred: sitk.Image, gt: sitk.Image, patient_id: str) -> None:
    gp, gg = Geometry.from_image(pred), Geometry.from_image(gt)
    if not gp.is_close(gg):
        logger.warning(
            "case %s: prediction grid (size %s, spacing %s, origin %s) differs from the "
            "ground-truth/CT grid (size %s, spacing %s, origin %s); scoring after nearest resampling",
            patient_id,
            gp.size,
            tuple(round(s, 4) for s in gp.spacing),
            tuple(round(o, 3) for o in gp.origin),
            gg.size,
            tuple(round(s, 4) for s in gg.spacing),
            tuple(round(o, 3) for o in gg.origin),
        )


def _extras(
    pred: npt.NDArray[Any], gt: npt.NDArray[Any], spacing_zyx: Sequence[float], tolerance_mm: float
) -> dict[str, float]:
    return {
        "hd95": metrics.hd95(pred, gt, spacing_zyx),
        "assd": metrics.assd(pred, gt, spacing_zyx),
        "surface_dice": metrics.surface_dice(pred, gt, spacing_zyx, tolerance_mm=tolerance_mm),
        "volume_gt_mm3": metrics.volume(gt, spacing_zyx),
        "volume_pred_mm3": metrics.volume(pred, spacing_zyx),
    }


def _box_or_grid(bbox: BBox | None, gt: sitk.Image) -> BBox:
    if bbox is not None:
        return bbox
    lower, upper = Geometry.from_image(gt).world_bounds()
    return BBox.from_corners(lower.tolist(), upper.tolist())


# -- 2020 / 2021 --------------------------------------------------------------------------------------
def score_2020(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    bbox: BBox | None,
    *,
    patient_id: str = "",
    tolerance_mm: float = 1.0,
) -> CaseScore:
    """Score one case by the HECKTOR 2020 rules (Dice, precision, recall on the box grid).

    Parameters
    ----------
    prediction
        Binary mask (values 0/1) anywhere in world space, usually on the CT
        grid; ``None`` for a missing prediction (scores 0).
    ground_truth
        Binary ground-truth mask; its spacing defines the scoring grid.
    bbox
        The case's box (world mm). ``None`` scores on the ground truth's whole
        extent (not an official rule; :func:`~hecktorseg.evaluation.evaluate`
        warns about it).
    patient_id
        Only used in messages.
    tolerance_mm
        Tolerance of the (extra) surface Dice.

    Raises
    ------
    DataError
        Values other than 0/1 in the prediction or the ground truth.
    """
    return _score_box(prediction, ground_truth, bbox, "2020", patient_id, tolerance_mm, quirk=False)


def score_2021(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    bbox: BBox | None,
    *,
    patient_id: str = "",
    official_spacing_quirk: bool = False,
    tolerance_mm: float = 1.0,
) -> CaseScore:
    """Score one case by the HECKTOR 2021 rules (Dice and HD95 on the box grid).

    Parameters
    ----------
    prediction
        Binary mask (0/1); ``None`` for a missing prediction (Dice 0, HD95 ``inf``).
        An empty prediction scores Dice 0 and HD95 0.
    ground_truth
        Binary ground-truth mask; its spacing defines the scoring grid.
    bbox
        The case's box (world mm); ``None`` uses the ground truth's extent.
    patient_id
        Only used in messages.
    official_spacing_quirk
        Compute the official HD95 as the organisers' script did, with the
        spacing in (x, y, z) order applied to (z, y, x) arrays. The extra
        metrics (ASSD, surface Dice, volumes) always use the correct order.
    tolerance_mm
        Tolerance of the (extra) surface Dice.

    Raises
    ------
    DataError
        Values other than 0/1 in the prediction or the ground truth.
    """
    return _score_box(
        prediction, ground_truth, bbox, "2021", patient_id, tolerance_mm, quirk=official_spacing_quirk
    )


def _score_box(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    bbox: BBox | None,
    edition: Literal["2020", "2021"],
    patient_id: str,
    tolerance_mm: float,
    *,
    quirk: bool,
) -> CaseScore:
    _check_values(ground_truth, _BINARY, "ground truth", patient_id)
    spacing_xyz = tuple(float(s) for s in ground_truth.GetSpacing())
    box = _box_or_grid(bbox, ground_truth)
    gt = resample_to_box(ground_truth, box, spacing_xyz)
    sp_zyx = metrics.spacing_zyx(spacing_xyz)
    if not gt.any():
        logger.warning("case %s: the ground truth is empty inside the box", patient_id)
    if prediction is None:
        return missing_score_box(patient_id, volume_gt_mm3=metrics.volume(gt, sp_zyx))
    _check_values(prediction, _BINARY, "prediction", patient_id)
    _check_same_grid(prediction, ground_truth, patient_id)
    pred = resample_to_box(prediction, box, spacing_xyz)
    values = _extras(pred, gt, sp_zyx, tolerance_mm)
    if not pred.any():
        values.update(dice=0.0, precision=0.0, recall=0.0)
        if edition == "2021":
            values["hd95"] = 0.0
        return CaseScore(patient_id, "empty", values)
    values.update(
        dice=metrics.dice(pred, gt), precision=metrics.precision(pred, gt), recall=metrics.recall(pred, gt)
    )
    if edition == "2021" and quirk:
        values["hd95"] = metrics.hd95(pred, gt, spacing_xyz)
    return CaseScore(patient_id, "ok", values)


def missing_score(
    patient_id: str,
    edition: str,
    *,
    status: Status = "missing",
    message: str = "",
    volume_gt_mm3: float | Mapping[str, float] = math.nan,
) -> CaseScore:
    """The score of a missing (or unusable) prediction under an edition's rules.

    2020: Dice, precision and recall 0. 2021: Dice 0 and HD95 ``inf``. 2022:
    an empty prediction per label (``volume_gt_mm3`` maps label names to the
    ground-truth volumes, which stay in the aggregated Dice). 2025/2026: as
    2022 for the Dice; the lesion counts need the ground truth itself (score it
    with ``prediction=None`` for the full missing score). The rule is the
    edition's :attr:`~hecktorseg.evaluation.EditionRules.missing_score`.
    """
    from hecktorseg.evaluation.rules import get_rules  # the rules record refers back to this module

    return get_rules(edition).missing_score(
        patient_id, status=status, message=message, volume_gt_mm3=volume_gt_mm3
    )


def missing_score_box(
    patient_id: str,
    *,
    status: Status = "missing",
    message: str = "",
    volume_gt_mm3: float | Mapping[str, float] = math.nan,
) -> CaseScore:
    """The 2020/2021 score of a missing prediction: Dice, precision, recall 0; HD95 and ASSD ``inf``."""
    inf = math.inf
    gt_volume = float(volume_gt_mm3) if not isinstance(volume_gt_mm3, Mapping) else math.nan
    values = {
        "dice": 0.0,
        "precision": 0.0,
        "recall": 0.0,
        "hd95": inf,
        "assd": inf,
        "surface_dice": 0.0,
        "volume_gt_mm3": gt_volume,
        "volume_pred_mm3": 0.0,
    }
    return CaseScore(patient_id, status, values, message)


def missing_score_2022(
    patient_id: str,
    *,
    status: Status = "missing",
    message: str = "",
    volume_gt_mm3: float | Mapping[str, float] = math.nan,
) -> CaseScore:
    """The 2022 score of a missing prediction: an empty prediction per label (label name → GT volume in mm³)."""
    inf = math.inf
    gt_volumes = volume_gt_mm3 if isinstance(volume_gt_mm3, Mapping) else {}
    values: dict[str, float] = {}
    dices = []
    for name in LABEL_NAMES_2022.values():
        vol = float(gt_volumes.get(name, math.nan))
        present = vol != 0.0
        values[f"dice_{name}"] = 0.0 if present else math.nan
        values[f"hd95_{name}"] = inf if present else math.nan
        values[f"assd_{name}"] = inf if present else math.nan
        values[f"surface_dice_{name}"] = 0.0 if present else math.nan
        values[f"tp_mm3_{name}"] = 0.0
        values[f"volume_gt_mm3_{name}"] = vol
        values[f"volume_pred_mm3_{name}"] = 0.0
        if present:
            dices.append(0.0)
    values["dice"] = float(np.mean(dices)) if dices else math.nan
    return CaseScore(patient_id, status, values, message)


# -- 2022 ---------------------------------------------------------------------------------------------
def score_2022(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    *,
    patient_id: str = "",
    tolerance_mm: float = 1.0,
) -> CaseScore:
    """Score one case by the HECKTOR 2022 rules (per-label volumes for the aggregated Dice).

    Parameters
    ----------
    prediction
        Label map with values in {0, 1, 2}, on the CT grid (same spacing as the
        ground truth); ``None`` for a missing prediction (counted as empty).
    ground_truth
        Label map with values in {0, 1, 2}; the scoring grid.
    patient_id
        Only used in messages.
    tolerance_mm
        Tolerance of the (extra) surface Dice.

    Returns
    -------
    CaseScore
        Per label name (``GTVp``, ``GTVn``): ``tp_mm3``, ``volume_gt_mm3``,
        ``volume_pred_mm3`` (feed :func:`aggregated_dice`), and per-case
        ``dice``, ``hd95``, ``assd``, ``surface_dice`` (NaN where the label is
        absent from both masks); ``dice`` is their mean over present labels.

    Raises
    ------
    GeometryError
        The prediction's spacing differs from the ground truth's.
    DataError
        Values outside {0, 1, 2}.
    """
    _check_values(ground_truth, _LABELS_2022, "ground truth", patient_id)
    gt = sitk.GetArrayFromImage(ground_truth).astype(np.uint8)
    sp_zyx = metrics.spacing_zyx(ground_truth.GetSpacing())
    voxel_mm3 = float(np.prod(sp_zyx))
    if prediction is None:
        volumes = {name: float((gt == lab).sum()) * voxel_mm3 for lab, name in LABEL_NAMES_2022.items()}
        return missing_score_2022(patient_id, volume_gt_mm3=volumes)
    _check_values(prediction, _LABELS_2022, "prediction", patient_id)
    if not np.allclose(prediction.GetSpacing(), ground_truth.GetSpacing(), rtol=1e-5, atol=1e-4):
        raise GeometryError(
            f"prediction spacing {tuple(prediction.GetSpacing())} of case {patient_id!r} differs from "
            f"the ground-truth spacing {tuple(ground_truth.GetSpacing())}",
            hint="the 2022 rules require predictions on the CT grid (same spacing as the ground truth)",
        )
    _check_same_grid(prediction, ground_truth, patient_id)
    pred_img = _resample_nearest(prediction, Geometry.from_image(ground_truth))
    pred = sitk.GetArrayFromImage(pred_img).astype(np.uint8)
    values: dict[str, float] = {}
    dices: list[float] = []
    for lab, name in LABEL_NAMES_2022.items():
        p, g = pred == lab, gt == lab
        present = bool(p.any() or g.any())
        values[f"tp_mm3_{name}"] = float(np.logical_and(p, g).sum()) * voxel_mm3
        values[f"volume_gt_mm3_{name}"] = float(g.sum()) * voxel_mm3
        values[f"volume_pred_mm3_{name}"] = float(p.sum()) * voxel_mm3
        if present:
            d = metrics.dice(p, g)
            dices.append(d)
            values[f"dice_{name}"] = d
            values[f"hd95_{name}"] = metrics.hd95(p, g, sp_zyx)
            values[f"assd_{name}"] = metrics.assd(p, g, sp_zyx)
            values[f"surface_dice_{name}"] = metrics.surface_dice(p, g, sp_zyx, tolerance_mm=tolerance_mm)
        else:
            for key in ("dice", "hd95", "assd", "surface_dice"):
                values[f"{key}_{name}"] = math.nan
    values["dice"] = float(np.mean(dices)) if dices else math.nan
    status: Status = "ok" if pred.any() else "empty"
    return CaseScore(patient_id, status, values)


def aggregated_dice(scores: Sequence[CaseScore]) -> dict[str, float]:
    """DSCagg per 2022 label: ``2 ΣTP / Σ(V_gt + V_pred)`` over all cases (volumes in mm³).

    A label absent from every ground truth and prediction gets NaN.
    """
    out: dict[str, float] = {}
    for name in LABEL_NAMES_2022.values():
        tp = sum(_finite0(s.metrics.get(f"tp_mm3_{name}", 0.0)) for s in scores)
        denom = sum(
            _finite0(s.metrics.get(f"volume_gt_mm3_{name}", 0.0))
            + _finite0(s.metrics.get(f"volume_pred_mm3_{name}", 0.0))
            for s in scores
        )
        out[name] = 2.0 * tp / denom if denom > 0 else math.nan
    return out


def _finite0(value: float) -> float:
    return float(value) if math.isfinite(value) else 0.0


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _median(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.median(finite)) if finite else math.nan


def summarize(scores: Sequence[CaseScore], edition: str) -> dict[str, Any]:
    """The summary of an evaluation (what ``summary.json`` holds), by the edition's rules.

    Keys: ``edition``, ``n_cases``, ``n_ok``, ``n_empty``, ``n_missing``,
    ``n_invalid``, ``mean_dice``; 2020 adds ``mean_precision``,
    ``mean_recall`` (and the extra ``median_hd95``); 2021 adds ``median_hd95``
    (``inf`` when more than half of the cases are missing), ``mean_precision``,
    ``mean_recall``; 2022 adds ``dsc_agg`` (``{"GTVp": …, "GTVn": …}``) and
    ``dsc_agg_mean`` (mean over the defined labels). For 2022 ``mean_dice`` is
    the mean over cases of the per-case Dice (itself the mean over the labels
    present), which is not an official number. Medians and means skip NaN.
    2025/2026: see :func:`~hecktorseg.evaluation.scoring_2025.summarize_2025`.
    The keys are the edition's :attr:`~hecktorseg.evaluation.EditionRules.summary_keys`.

    Raises
    ------
    DataError
        Unknown edition.
    """
    from hecktorseg.evaluation.rules import get_rules  # the rules record refers back to this module

    return get_rules(edition).summarize(scores, str(edition))


def _summary_head(scores: Sequence[CaseScore], edition: str) -> dict[str, Any]:
    counts = {s: sum(1 for c in scores if c.status == s) for s in ("ok", "empty", "missing", "invalid")}
    return {
        "edition": edition,
        "n_cases": len(scores),
        "n_ok": counts["ok"],
        "n_empty": counts["empty"],
        "n_missing": counts["missing"],
        "n_invalid": counts["invalid"],
        "mean_dice": _mean([c.metrics.get("dice", math.nan) for c in scores]),
    }


def summarize_box(scores: Sequence[CaseScore], edition: str) -> dict[str, Any]:
    """The 2020/2021 summary: counts, ``mean_dice``, ``mean_precision``, ``mean_recall``, ``median_hd95``, ``mean_surface_dice``."""
    summary = _summary_head(scores, edition)
    summary["mean_precision"] = _mean([c.metrics.get("precision", math.nan) for c in scores])
    summary["mean_recall"] = _mean([c.metrics.get("recall", math.nan) for c in scores])
    summary["median_hd95"] = _median([c.metrics.get("hd95", math.nan) for c in scores])
    summary["mean_surface_dice"] = _mean([c.metrics.get("surface_dice", math.nan) for c in scores])
    return summary


def summarize_2022(scores: Sequence[CaseScore], edition: str = "2022") -> dict[str, Any]:
    """The 2022 summary: counts, ``mean_dice``, ``dsc_agg`` per label, ``dsc_agg_mean``, ``median_hd95_<label>``."""
    summary = _summary_head(scores, edition)
    agg = aggregated_dice(scores)
    summary["dsc_agg"] = agg
    summary["dsc_agg_mean"] = _mean(list(agg.values()))
    for name in LABEL_NAMES_2022.values():
        summary[f"median_hd95_{name}"] = _median([c.metrics.get(f"hd95_{name}", math.nan) for c in scores])
    return summary
