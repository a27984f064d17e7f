"""The HECKTOR 2025 (and, until others are published, 2026) Task 1 scores: GTVp Dice, GTVn DSCagg and F1agg.

Labels: 0 background, 1 GTVp (primary tumour), 2 GTVn (lymph nodes, all
nodes share label 2). Values outside {0, 1, 2} are an error.

Grid
    The prediction must already lie on the ground truth's grid (size,
    spacing, origin and direction; the 2025 rules do not resample): any
    other grid is a :class:`~hecktorseg.errors.GeometryError`.
GTVp — mean Dice over patients
    Per case ``Dice = 2 |P ∩ G| / (|P| + |G|)`` of label 1. A case without
    GTVp in its ground truth *and* none predicted has no GTVp Dice (NaN) and
    does not enter the mean; a case without GTVp in its ground truth but with a
    predicted GTVp scores 0 and counts. ``gtvp_mean_dice`` is the mean over the
    cases that have a GTVp Dice.
GTVn — aggregated Dice
    ``DSCagg = 2 Σ|P ∩ G| / Σ(|P| + |G|)`` of label 2, volumes in mm³ (each
    case with its own voxel size), summed over all cases.
GTVn — aggregated F1 of detection
    Lesions, matching and counts as in :mod:`hecktorseg.evaluation.detection`
    (26-connected components, detection at IoU > 0.3, one-to-one optimal
    assignment); TP, FP and FN are summed over all cases and
    ``F1agg = 2 TP / (2 TP + FP + FN)``.
Missing and unusable predictions
    A case without a prediction file (status ``missing``) or with an unusable
    one (``invalid``: unreadable, values outside {0, 1, 2}) is scored as an
    all-background prediction: GTVp Dice 0 when the ground truth has a GTVp, its
    GTVn volume stays in the DSCagg denominator and all its lesions are false
    negatives.
Empty sets
    When *no* case has a GTVp in ground truth or prediction, ``gtvp_mean_dice``
    is 1.0; when no case has GTVn voxels in ground truth or prediction (hence no
    lesion anywhere), ``gtvn_dsc_agg`` and ``gtvn_f1_agg`` are 1.0: nothing was
    missed and nothing was falsely found. A warning is logged. With no case at
    all every score is NaN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import GeometryError
from hecktorseg.evaluation import metrics
from hecktorseg.evaluation.detection import IOU_THRESHOLD, aggregated_f1, match_lesions
from hecktorseg.evaluation.scoring import CaseScore, Status, _check_values
from hecktorseg.evaluation.scoring_2022 import LABEL_NAMES_2022
from hecktorseg.io import LABELS_GTVP_GTVN, Geometry

__all__ = [
    "LABEL_NAMES_2025",
    "METRIC_COLUMNS_2025",
    "SUMMARY_KEYS_2025",
    "missing_score_2025",
    "score_2025",
    "summarize_2025",
]

logger = logging.getLogger(__name__)

LABEL_NAMES_2025: dict[int, str] = LABEL_NAMES_2022
"""Label value → name (1 primary tumour, 2 lymph nodes): the 2022 names, one definition."""

METRIC_COLUMNS_2025: tuple[str, ...] = (
    "dice",
    "dice_GTVp",
    "dice_GTVn",
    "gtvn_lesions_gt",
    "gtvn_lesions_pred",
    "gtvn_tp",
    "gtvn_fp",
    "gtvn_fn",
    "gtvn_f1",
    "tp_mm3_GTVp",
    "volume_gt_mm3_GTVp",
    "volume_pred_mm3_GTVp",
    "tp_mm3_GTVn",
    "volume_gt_mm3_GTVn",
    "volume_pred_mm3_GTVn",
)
"""The per-case metrics of the 2025 rules (columns of ``per_case.csv``)."""

SUMMARY_KEYS_2025: tuple[str, ...] = (
    "edition",
    "n_cases",
    "n_ok",
    "n_empty",
    "n_missing",
    "n_invalid",
    "gtvp_mean_dice",
    "gtvp_n_scored",
    "gtvn_dsc_agg",
    "gtvn_f1_agg",
    "gtvn_tp",
    "gtvn_fp",
    "gtvn_fn",
)
"""The keys of the 2025 ``summary.json``, in order."""

_GRID_ATOL_MM = 1e-2


def _grid_text(g: Geometry) -> str:
    return (
        f"size {g.size}, spacing {tuple(round(s, 4) for s in g.spacing)}, "
        f"origin {tuple(round(o, 3) for o in g.origin)}"
    )


def _check_on_grid(prediction: sitk.Image, ground_truth: sitk.Image, patient_id: str) -> None:
    gp, gg = Geometry.from_image(prediction), Geometry.from_image(ground_truth)
    if not gp.is_close(gg, atol=_GRID_ATOL_MM):
        extra = "" if np.allclose(gp.direction, gg.direction, atol=1e-3) else ", and another direction"
        raise GeometryError(
            f"prediction of case {patient_id!r} is not on the ground-truth grid "
            f"({_grid_text(gp)} instead of {_grid_text(gg)}{extra})",
            hint="the 2025 rules do not resample: write the mask on the patient's CT grid "
            "(as hecktorseg predict does)",
        )


def _label_array(image: sitk.Image) -> npt.NDArray[np.uint8]:
    # values are checked to lie in {0, 1, 2}: a view, cast (copied) only when not uint8 already
    return np.asarray(sitk.GetArrayViewFromImage(image), dtype=np.uint8)


def score_2025(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    *,
    patient_id: str = "",
    iou_threshold: float = IOU_THRESHOLD,
) -> CaseScore:
    """Score one case by the HECKTOR 2025 Task 1 rules.

    Parameters
    ----------
    prediction
        Label map with values in {0, 1, 2} on the ground truth's grid; ``None``
        for a missing prediction (scored as all background, status ``missing``).
    ground_truth
        Label map with values in {0, 1, 2}.
    patient_id
        Only used in messages.
    iou_threshold
        Detection threshold (IoU strictly above it).

    Returns
    -------
    CaseScore
        ``dice_GTVp`` / ``dice_GTVn`` (NaN where the label is in neither mask),
        ``dice`` (their mean over the labels present), the lesion counts
        ``gtvn_lesions_gt``, ``gtvn_lesions_pred``, ``gtvn_tp``, ``gtvn_fp``,
        ``gtvn_fn``, the case's ``gtvn_f1`` (NaN without lesions), and per label
        ``tp_mm3``, ``volume_gt_mm3``, ``volume_pred_mm3`` for the aggregated Dice.

    Raises
    ------
    GeometryError
        The prediction is not on the ground truth's grid.
    DataError
        Values outside {0, 1, 2}.
    """
    _check_values(ground_truth, LABELS_GTVP_GTVN, "ground truth", patient_id)
    gt = _label_array(ground_truth)
    if prediction is None:
        pred = np.zeros_like(gt)
        status: Status = "missing"
    else:
        _check_values(prediction, LABELS_GTVP_GTVN, "prediction", patient_id)
        _check_on_grid(prediction, ground_truth, patient_id)
        pred = _label_array(prediction)
        status = "ok" if pred.any() else "empty"
    voxel_mm3 = float(np.prod(metrics.spacing_zyx(ground_truth.GetSpacing())))
    values: dict[str, float] = {}
    dices: list[float] = []
    for lab, name in LABEL_NAMES_2025.items():
        p, g = pred == lab, gt == lab
        n_p, n_g = int(np.count_nonzero(p)), int(np.count_nonzero(g))
        n_tp = int(np.count_nonzero(p & g))
        values[f"tp_mm3_{name}"] = n_tp * voxel_mm3
        values[f"volume_gt_mm3_{name}"] = n_g * voxel_mm3
        values[f"volume_pred_mm3_{name}"] = n_p * voxel_mm3
        if n_p + n_g > 0:
            values[f"dice_{name}"] = 2.0 * n_tp / (n_p + n_g)
            dices.append(values[f"dice_{name}"])
        else:
            values[f"dice_{name}"] = math.nan
    values["dice"] = float(np.mean(dices)) if dices else math.nan
    match = match_lesions(pred == 2, gt == 2, threshold=iou_threshold)
    values.update(
        gtvn_lesions_gt=float(match.n_gt),
        gtvn_lesions_pred=float(match.n_pred),
        gtvn_tp=float(match.tp),
        gtvn_fp=float(match.fp),
        gtvn_fn=float(match.fn),
        gtvn_f1=match.f1,
    )
    return CaseScore(patient_id, status, values)


def missing_score_2025(
    patient_id: str,
    *,
    status: Status = "missing",
    message: str = "",
    volume_gt_mm3: float | Mapping[str, float] = math.nan,
) -> CaseScore:
    """A missing prediction's score from the ground-truth volumes alone (label name → mm³).

    The lesion counts are unknown here (NaN); :func:`score_2025` with
    ``prediction=None`` gives the full score, false negatives included.
    """
    volumes = volume_gt_mm3 if isinstance(volume_gt_mm3, Mapping) else {}
    values: dict[str, float] = {}
    dices = []
    for name in LABEL_NAMES_2025.values():
        vol = float(volumes.get(name, math.nan))
        values[f"tp_mm3_{name}"] = 0.0
        values[f"volume_gt_mm3_{name}"] = vol
        values[f"volume_pred_mm3_{name}"] = 0.0
        values[f"dice_{name}"] = 0.0 if vol != 0.0 else math.nan
        if vol != 0.0:
            dices.append(0.0)
    values["dice"] = float(np.mean(dices)) if dices else math.nan
    for key in ("gtvn_lesions_gt", "gtvn_tp", "gtvn_fn", "gtvn_f1"):
        values[key] = math.nan
    values.update(gtvn_lesions_pred=0.0, gtvn_fp=0.0)
    return CaseScore(patient_id, status, values, message)


def _sum(scores: Sequence[CaseScore], key: str) -> float:
    return float(sum(v for s in scores if math.isfinite(v := float(s.metrics.get(key, 0.0)))))


def summarize_2025(scores: Sequence[CaseScore], edition: str = "2025") -> dict[str, Any]:
    """The 2025 summary (what ``summary.json`` holds), keys :data:`SUMMARY_KEYS_2025` in that order.

    ``gtvp_mean_dice`` is the mean of the defined per-case GTVp Dice values
    (``gtvp_n_scored`` of them); ``gtvn_dsc_agg`` sums intersections and volumes
    in mm³ over all cases; ``gtvn_f1_agg`` is :func:`~hecktorseg.evaluation.detection.aggregated_f1`
    of the summed ``gtvn_tp``, ``gtvn_fp``, ``gtvn_fn``. See the module
    docstring for the empty-set conventions.
    """
    counts = {s: sum(1 for c in scores if c.status == s) for s in ("ok", "empty", "missing", "invalid")}
    gtvp = [d for c in scores if not math.isnan(d := float(c.metrics.get("dice_GTVp", math.nan)))]
    tp, fp, fn = (int(_sum(scores, k)) for k in ("gtvn_tp", "gtvn_fp", "gtvn_fn"))
    inter = _sum(scores, "tp_mm3_GTVn")
    denominator = _sum(scores, "volume_gt_mm3_GTVn") + _sum(scores, "volume_pred_mm3_GTVn")
    if not scores:
        gtvp_mean = dsc_agg = f1_agg = math.nan
    else:
        if gtvp:
            gtvp_mean = float(np.mean(gtvp))
        else:
            logger.warning("no case has a GTVp in its ground truth or prediction; gtvp_mean_dice = 1")
            gtvp_mean = 1.0
        if denominator > 0:
            dsc_agg = 2.0 * inter / denominator
        else:
            logger.warning("no case has a GTVn in its ground truth or prediction; GTVn scores = 1")
            dsc_agg = 1.0
        f1_agg = aggregated_f1(tp, fp, fn)
    summary: dict[str, Any] = {
        "edition": str(edition),
        "n_cases": len(scores),
        "n_ok": counts["ok"],
        "n_empty": counts["empty"],
        "n_missing": counts["missing"],
        "n_invalid": counts["invalid"],
        "gtvp_mean_dice": gtvp_mean,
        "gtvp_n_scored": len(gtvp),
        "gtvn_dsc_agg": dsc_agg,
        "gtvn_f1_agg": f1_agg,
        "gtvn_tp": tp,
        "gtvn_fp": fp,
        "gtvn_fn": fn,
    }
    assert tuple(summary) == SUMMARY_KEYS_2025
    return summary
