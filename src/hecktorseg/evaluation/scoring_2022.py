"""The HECKTOR 2022 per-case score and the aggregated Dice over all cases.

2022
    The prediction's spacing must equal the ground truth's; the prediction is
    resampled (nearest) onto the ground-truth grid. Per label (1 GTVp, 2 GTVn)
    the aggregated Dice ``DSCagg = 2 ΣTP / Σ(V_gt + V_pred)`` over all cases,
    volumes in mm³; the final score is the mean of the two. A missing (or
    invalid) prediction counts as an empty one: its ground-truth volume stays
    in the denominator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from hecktorseg.errors import GeometryError
from hecktorseg.evaluation import metrics
from hecktorseg.evaluation.scoring import (
    CaseScore,
    Status,
    _check_same_grid,
    _check_values,
    _finite0,
    _mean,
    _median,
    _resample_nearest,
    _summary_head,
)
from hecktorseg.io import LABELS_GTVP_GTVN, Geometry

__all__ = [
    "LABEL_NAMES_2022",
    "aggregated_dice",
    "missing_score_2022",
    "score_2022",
    "summarize_2022",
]

LABEL_NAMES_2022: dict[int, str] = {1: "GTVp", 2: "GTVn"}
"""Label value → name of the 2022 labels (1 primary tumour, 2 lymph nodes)."""


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
    _check_values(ground_truth, LABELS_GTVP_GTVN, "ground truth", patient_id)
    gt = sitk.GetArrayFromImage(ground_truth).astype(np.uint8)
    sp_zyx = metrics.spacing_zyx(ground_truth.GetSpacing())
    voxel_mm3 = float(np.prod(sp_zyx))
    if prediction is None:
        volumes = {name: float((gt == lab).sum()) * voxel_mm3 for lab, name in LABEL_NAMES_2022.items()}
        return missing_score_2022(patient_id, volume_gt_mm3=volumes)
    _check_values(prediction, LABELS_GTVP_GTVN, "prediction", patient_id)
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


def summarize_2022(scores: Sequence[CaseScore], edition: str = "2022") -> dict[str, Any]:
    """The 2022 summary: counts, ``mean_dice``, ``dsc_agg`` per label, ``dsc_agg_mean``, ``median_hd95_<label>``."""
    summary = _summary_head(scores, edition)
    agg = aggregated_dice(scores)
    summary["dsc_agg"] = agg
    summary["dsc_agg_mean"] = _mean(list(agg.values()))
    for name in LABEL_NAMES_2022.values():
        summary[f"median_hd95_{name}"] = _median([c.metrics.get(f"hd95_{name}", math.nan) for c in scores])
    return summary
