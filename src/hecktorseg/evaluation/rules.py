"""Each HECKTOR edition's scoring rules as one frozen record: :class:`EditionRules`.

:func:`~hecktorseg.evaluation.evaluate`, :func:`~hecktorseg.evaluation.summarize`,
:func:`~hecktorseg.evaluation.scoring.missing_score` and the ``evaluate`` command look
an edition up here (:func:`get_rules`) instead of branching on its name. A new
edition is a new record in :data:`RULES`.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs
import SimpleITK as sitk

from hecktorseg.errors import DataError
from hecktorseg.evaluation.ranking import RunRanking, rank_runs_2025
from hecktorseg.evaluation.scoring import CaseScore, Status
from hecktorseg.evaluation.scoring_2022 import (
    LABEL_NAMES_2022,
    missing_score_2022,
    score_2022,
    summarize_2022,
)
from hecktorseg.evaluation.scoring_2025 import (
    LABEL_NAMES_2025,
    METRIC_COLUMNS_2025,
    SUMMARY_KEYS_2025,
    missing_score_2025,
    score_2025,
    summarize_2025,
)
from hecktorseg.evaluation.scoring_box import missing_score_box, score_2020, score_2021, summarize_box
from hecktorseg.io import LABELS_BINARY, LABELS_GTVP_GTVN, BBox

__all__ = [
    "EDITIONS",
    "RULES",
    "CaseScorer",
    "Edition",
    "EditionRules",
    "GridPolicy",
    "MissingScorer",
    "ScoringOptions",
    "get_rules",
]

Edition = Literal["2020", "2021", "2022", "2025", "2026"]
"""A HECKTOR edition whose scoring rules to apply."""

GridPolicy = Literal["box", "resample", "exact"]
"""Where a prediction is scored.

``box``: prediction and ground truth are both resampled (nearest) onto the
case's box at the ground truth's spacing (2020, 2021). ``resample``: the
prediction (which must have the ground truth's spacing) is resampled (nearest)
onto the ground-truth grid (2022). ``exact``: the prediction must already lie
on the ground-truth grid; another grid is an error (2025, 2026).
"""


@attrs.frozen
class ScoringOptions:
    """Per-run options of the per-case scorers (not part of any edition's rules).

    Attributes
    ----------
    tolerance_mm
        Tolerance of the (extra) surface Dice.
    official_spacing_quirk
        2021: HD95 as the official script computed it.
    """

    tolerance_mm: float = 1.0
    official_spacing_quirk: bool = False


class CaseScorer(Protocol):
    """Scores one case: ``(prediction or None, ground truth, box, patient id, options) → CaseScore``."""

    def __call__(
        self,
        prediction: sitk.Image | None,
        ground_truth: sitk.Image,
        bbox: BBox | None,
        patient_id: str,
        options: ScoringOptions,
    ) -> CaseScore: ...


class MissingScorer(Protocol):
    """A missing prediction's score from the ground-truth volume(s) alone."""

    def __call__(
        self,
        patient_id: str,
        *,
        status: Status = "missing",
        message: str = "",
        volume_gt_mm3: float | Mapping[str, float] = math.nan,
    ) -> CaseScore: ...


def _sorted_labels(value: Mapping[int, str] | Sequence[tuple[int, str]]) -> tuple[tuple[int, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((int(k), str(v)) for k, v in items))


@attrs.frozen
class EditionRules:
    """Everything that differs between the editions' scoring rules.

    Attributes
    ----------
    edition
        ``"2020"``, ``"2021"``, ``"2022"``, ``"2025"`` or ``"2026"``.
    description
        One line: what is scored and ranked.
    labels
        The label values allowed in ground truth and prediction.
    label_names
        ``(value, name)`` of the scored foreground labels.
    grid
        Where a prediction is scored (:data:`GridPolicy`).
    needs_box
        Whether cases are scored inside a box (a box table is expected).
    missing_case
        How a missing or unusable prediction counts (one sentence, for the docs and the CLI).
    score
        The per-case scorer (a :class:`CaseScorer`); with ``prediction=None`` it
        gives the missing score.
    missing_score
        A missing prediction's score from the ground-truth volume(s) alone.
    summarize
        ``(scores, edition) → summary`` (what ``summary.json`` holds).
    metric_columns
        The per-case metrics, in the order of ``per_case.csv``.
    summary_keys
        The keys of ``summary.json`` (top level), in order.
    headline
        The summary key of the main figure (``EvaluationResult.mean_dice``).
    shown_columns
        The per-case columns the ``evaluate`` command prints.
    rank
        Ranks several runs from their summaries (``run name → summary``), or
        ``None`` where the edition defines no ranking hecktorseg reproduces.
    """

    edition: str
    description: str
    labels: frozenset[int]
    label_names: tuple[tuple[int, str], ...] = attrs.field(converter=_sorted_labels)
    grid: GridPolicy
    needs_box: bool
    missing_case: str
    score: CaseScorer
    missing_score: MissingScorer
    summarize: Callable[[Sequence[CaseScore], str], dict[str, Any]]
    metric_columns: tuple[str, ...]
    summary_keys: tuple[str, ...]
    headline: str
    shown_columns: tuple[str, ...]
    rank: Callable[[Mapping[str, Mapping[str, Any]]], list[RunRanking]] | None = None


# -- the per-case scorers behind one signature -----------------------------------------------------
def _score_2020(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    bbox: BBox | None,
    patient_id: str,
    options: ScoringOptions,
) -> CaseScore:
    return score_2020(
        prediction, ground_truth, bbox, patient_id=patient_id, tolerance_mm=options.tolerance_mm
    )


def _score_2021(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    bbox: BBox | None,
    patient_id: str,
    options: ScoringOptions,
) -> CaseScore:
    return score_2021(
        prediction,
        ground_truth,
        bbox,
        patient_id=patient_id,
        official_spacing_quirk=options.official_spacing_quirk,
        tolerance_mm=options.tolerance_mm,
    )


def _score_2022(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    bbox: BBox | None,
    patient_id: str,
    options: ScoringOptions,
) -> CaseScore:
    return score_2022(prediction, ground_truth, patient_id=patient_id, tolerance_mm=options.tolerance_mm)


def _score_2025(
    prediction: sitk.Image | None,
    ground_truth: sitk.Image,
    bbox: BBox | None,
    patient_id: str,
    options: ScoringOptions,
) -> CaseScore:
    return score_2025(prediction, ground_truth, patient_id=patient_id)


_BOX_COLUMNS = (
    "dice",
    "precision",
    "recall",
    "hd95",
    "assd",
    "surface_dice",
    "volume_gt_mm3",
    "volume_pred_mm3",
)
_HEAD_KEYS = ("edition", "n_cases", "n_ok", "n_empty", "n_missing", "n_invalid", "mean_dice")
_COLUMNS_2022 = (
    "dice",
    *(
        f"{k}_{name}"
        for name in LABEL_NAMES_2022.values()
        for k in ("dice", "hd95", "assd", "surface_dice", "tp_mm3", "volume_gt_mm3", "volume_pred_mm3")
    ),
)
_BOX_SUMMARY = (*_HEAD_KEYS, "mean_precision", "mean_recall", "median_hd95", "mean_surface_dice")

_RULES_2020 = EditionRules(
    edition="2020",
    description="GTVt, box grid: Dice, precision, recall per case; ranked by mean Dice",
    labels=LABELS_BINARY,
    label_names={1: "GTVt"},
    grid="box",
    needs_box=True,
    missing_case="a missing case scores Dice, precision and recall 0",
    score=_score_2020,
    missing_score=missing_score_box,
    summarize=summarize_box,
    metric_columns=_BOX_COLUMNS,
    summary_keys=_BOX_SUMMARY,
    headline="mean_dice",
    shown_columns=("dice", "precision", "recall", "hd95", "surface_dice"),
)
_RULES_2021 = attrs.evolve(
    _RULES_2020,
    edition="2021",
    description="GTVt, box grid: Dice and HD95 per case; ranked by mean Dice and median HD95",
    score=_score_2021,
    missing_case="a missing case scores Dice 0 and HD95 inf (an empty prediction Dice 0 and HD95 0)",
)
_RULES_2022 = EditionRules(
    edition="2022",
    description="GTVp and GTVn on the ground-truth grid: aggregated Dice per label and their mean",
    labels=LABELS_GTVP_GTVN,
    label_names=LABEL_NAMES_2022,
    grid="resample",
    needs_box=False,
    missing_case="a missing case counts as an empty prediction (its volumes stay in the DSCagg)",
    score=_score_2022,
    missing_score=missing_score_2022,
    summarize=summarize_2022,
    metric_columns=_COLUMNS_2022,
    summary_keys=(
        *_HEAD_KEYS,
        "dsc_agg",
        "dsc_agg_mean",
        *(f"median_hd95_{n}" for n in LABEL_NAMES_2022.values()),
    ),
    headline="dsc_agg_mean",
    shown_columns=("dice_GTVp", "dice_GTVn", "hd95_GTVp", "hd95_GTVn"),
)
_RULES_2025 = EditionRules(
    edition="2025",
    description=(
        "GTVp mean Dice; GTVn aggregated Dice and aggregated F1 of lesion detection (IoU > 0.3); "
        "ranked by Borda counts"
    ),
    labels=LABELS_GTVP_GTVN,
    label_names=LABEL_NAMES_2025,
    grid="exact",
    needs_box=False,
    missing_case=(
        "a missing or unusable prediction counts as all background "
        "(GTVp Dice 0, GTVn volume in the DSCagg, every lesion a false negative)"
    ),
    score=_score_2025,
    missing_score=missing_score_2025,
    summarize=summarize_2025,
    metric_columns=METRIC_COLUMNS_2025,
    summary_keys=SUMMARY_KEYS_2025,
    headline="gtvp_mean_dice",
    shown_columns=("dice_GTVp", "dice_GTVn", "gtvn_lesions_gt", "gtvn_tp", "gtvn_fp", "gtvn_fn"),
    rank=rank_runs_2025,
)
_RULES_2026 = attrs.evolve(
    _RULES_2025,
    edition="2026",
    description=_RULES_2025.description + " (the 2025 rules until the organisers publish others)",
)

RULES: Mapping[str, EditionRules] = types.MappingProxyType(
    {r.edition: r for r in (_RULES_2020, _RULES_2021, _RULES_2022, _RULES_2025, _RULES_2026)}
)
"""Edition → its rules."""

EDITIONS: tuple[str, ...] = tuple(RULES)
"""The editions :func:`~hecktorseg.evaluation.evaluate` knows."""


def get_rules(edition: EditionRules | str | Any) -> EditionRules:
    """The rules of an edition (``"2025"``, a :class:`~hecktorseg.io.Layout` of that name, or a record).

    Raises
    ------
    DataError
        Unknown edition.
    """
    if isinstance(edition, EditionRules):
        return edition
    name = str(getattr(edition, "value", edition))
    try:
        return RULES[name]
    except KeyError:
        raise DataError(f"unknown edition {name!r}", hint=f"choose one of {', '.join(EDITIONS)}") from None
