"""What every edition's scorer shares: the per-case record, value and grid checks, the dispatch by edition.

The official per-case scores of the HECKTOR challenges are split by edition:

- :mod:`hecktorseg.evaluation.scoring_box`: 2020 and 2021, scored on the
  resampled bounding-box grid (:func:`~hecktorseg.evaluation.score_2020`,
  :func:`~hecktorseg.evaluation.score_2021`);
- :mod:`hecktorseg.evaluation.scoring_2022`: 2022, the aggregated Dice over
  all cases (:func:`~hecktorseg.evaluation.score_2022`,
  :func:`~hecktorseg.evaluation.aggregated_dice`);
- :mod:`hecktorseg.evaluation.scoring_2025`: 2025/2026.

This module holds :class:`CaseScore`, the label-value and grid checks those
scorers share, the summary helpers, and :func:`missing_score` /
:func:`summarize`, which pick the edition's rule from its
:class:`~hecktorseg.evaluation.EditionRules` record in
:mod:`hecktorseg.evaluation.rules`.

Besides the official numbers every case also gets HD95, ASSD, surface Dice
and volumes computed with the correct spacing (see
:mod:`hecktorseg.evaluation.metrics` for their conventions).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.io import Geometry

__all__ = [
    "CaseScore",
    "missing_score",
    "summarize",
]

logger = logging.getLogger(__name__)


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


# -- shared checks ------------------------------------------------------------------------------------
def _resample_nearest(image: sitk.Image, reference: Geometry) -> sitk.Image:
    return sitk.Resample(
        image, reference.empty_image(sitk.sitkUInt8), sitk.Transform(), sitk.sitkNearestNeighbor, 0.0
    )


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
