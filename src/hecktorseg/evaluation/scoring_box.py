"""The HECKTOR 2020 and 2021 per-case scores and summary, on the bounding-box grid.

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
    In both editions a box lying entirely outside the ground-truth image is an
    error (:func:`check_box_overlaps`); :func:`~hecktorseg.evaluation.evaluate`
    reports such a case as ``invalid`` with NaN metrics and says why, instead of
    scoring an all-background grid (which gave HD95 0 and surface Dice 1).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import GeometryError
from hecktorseg.evaluation import metrics
from hecktorseg.evaluation.scoring import (
    CaseScore,
    Status,
    _check_same_grid,
    _check_values,
    _mean,
    _median,
    _resample_nearest,
    _summary_head,
)
from hecktorseg.io import LABELS_BINARY, BBox, Geometry

__all__ = [
    "box_grid",
    "check_box_overlaps",
    "missing_score_box",
    "resample_to_box",
    "score_2020",
    "score_2021",
    "summarize_box",
]

logger = logging.getLogger(__name__)


# -- grids --------------------------------------------------------------------------------------------
def box_grid(bbox: BBox, spacing: Sequence[float]) -> Geometry:
    """The scoring grid of 2020/2021: origin ``(x1, y1, z1)``, the given (x, y, z) spacing, covering the box.

    The size per axis is ``round((upper - lower) / spacing)`` (at least 1), as in
    the organisers' script; the direction is the identity.
    """
    sp = np.asarray([float(s) for s in spacing], dtype=np.float64)
    size = np.maximum(np.round(bbox.size / sp), 1).astype(int)
    return Geometry(size=tuple(int(s) for s in size), spacing=tuple(sp), origin=tuple(bbox.lower))


def resample_to_box(image: sitk.Image, bbox: BBox, spacing: Sequence[float]) -> npt.NDArray[np.uint8]:
    """Resample a label image (nearest neighbour) onto :func:`box_grid`; returns the (z, y, x) array.

    Voxels of the box outside ``image`` are 0.
    """
    out = _resample_nearest(image, box_grid(bbox, spacing))
    array: npt.NDArray[np.uint8] = sitk.GetArrayFromImage(out).astype(np.uint8)
    return array


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


def check_box_overlaps(bbox: BBox | None, ground_truth: sitk.Image, patient_id: str = "") -> None:
    """Raise unless the box (if any) overlaps the ground-truth image.

    A box entirely outside the image would be scored on an all-background grid:
    an empty prediction would then get HD95 0 and surface Dice 1, numbers that
    mean nothing. Such a case is an error (in :func:`~hecktorseg.evaluation.evaluate`:
    status ``"invalid"`` with NaN metrics and this message, unless ``strict``).

    Raises
    ------
    GeometryError
        The box and the image do not overlap.
    """
    if bbox is None:
        return
    lower, upper = Geometry.from_image(ground_truth).world_bounds()
    if np.all(np.minimum(upper, bbox.upper) > np.maximum(lower, bbox.lower)):
        return
    fmt = ", ".join
    raise GeometryError(
        f"case {patient_id}: the box (lower {fmt(f'{v:.1f}' for v in bbox.lower)}, upper "
        f"{fmt(f'{v:.1f}' for v in bbox.upper)} mm) lies entirely outside the ground-truth image "
        f"(lower {fmt(f'{v:.1f}' for v in lower)}, upper {fmt(f'{v:.1f}' for v in upper)} mm); "
        "no metric is defined",
        hint="check the box table row of this case (world coordinates in mm)",
    )


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
    _check_values(ground_truth, LABELS_BINARY, "ground truth", patient_id)
    check_box_overlaps(bbox, ground_truth, patient_id)
    spacing_xyz = tuple(float(s) for s in ground_truth.GetSpacing())
    box = _box_or_grid(bbox, ground_truth)
    gt = resample_to_box(ground_truth, box, spacing_xyz)
    sp_zyx = metrics.spacing_zyx(spacing_xyz)
    if not gt.any():
        logger.warning("case %s: the ground truth is empty inside the box", patient_id)
    if prediction is None:
        return missing_score_box(patient_id, volume_gt_mm3=metrics.volume(gt, sp_zyx))
    _check_values(prediction, LABELS_BINARY, "prediction", patient_id)
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


def summarize_box(scores: Sequence[CaseScore], edition: str) -> dict[str, Any]:
    """The 2020/2021 summary: counts, ``mean_dice``, ``mean_precision``, ``mean_recall``, ``median_hd95``, ``mean_surface_dice``."""
    summary = _summary_head(scores, edition)
    summary["mean_precision"] = _mean([c.metrics.get("precision", math.nan) for c in scores])
    summary["mean_recall"] = _mean([c.metrics.get("recall", math.nan) for c in scores])
    summary["median_hd95"] = _median([c.metrics.get("hd95", math.nan) for c in scores])
    summary["mean_surface_dice"] = _mean([c.metrics.get("surface_dice", math.nan) for c in scores])
    return summary
