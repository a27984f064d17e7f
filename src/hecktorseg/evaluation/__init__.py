"""Scoring segmentations: spacing-aware metrics, the official HECKTOR 2020/2021/2022 rules, pictures.

- :mod:`~hecktorseg.evaluation.metrics`: Dice, precision, recall, HD95, ASSD,
  surface Dice and volumes on NumPy arrays (spacing in the array's axis order).
- :mod:`~hecktorseg.evaluation.scoring`: per-case official scores
  (:func:`score_2020`, :func:`score_2021`, :func:`score_2022`), the 2022
  aggregated Dice and the summaries.
- :func:`evaluate`: a folder of predictions against a dataset, writing
  ``per_case.csv`` and ``summary.json``.
- :func:`visualize_case` / :func:`visualize_dataset`: PNG overlays.
"""

from hecktorseg.evaluation.dataset import (
    EvaluationResult,
    GroundTruthCase,
    evaluate,
    find_ground_truth,
    find_prediction,
    metric_columns,
)
from hecktorseg.evaluation.metrics import (
    SurfaceDistances,
    assd,
    dice,
    hd95,
    precision,
    recall,
    spacing_zyx,
    surface_dice,
    surface_distances,
    volume,
)
from hecktorseg.evaluation.scoring import (
    EDITIONS,
    LABEL_NAMES_2022,
    CaseScore,
    Edition,
    aggregated_dice,
    box_grid,
    check_box_overlaps,
    missing_score,
    resample_to_box,
    score_2020,
    score_2021,
    score_2022,
    summarize,
)
from hecktorseg.evaluation.visualize import find_visualization_cases, visualize_case, visualize_dataset

__all__ = [
    "EDITIONS",
    "LABEL_NAMES_2022",
    "CaseScore",
    "Edition",
    "EvaluationResult",
    "GroundTruthCase",
    "SurfaceDistances",
    "aggregated_dice",
    "assd",
    "box_grid",
    "check_box_overlaps",
    "dice",
    "evaluate",
    "find_ground_truth",
    "find_prediction",
    "find_visualization_cases",
    "hd95",
    "metric_columns",
    "missing_score",
    "precision",
    "recall",
    "resample_to_box",
    "score_2020",
    "score_2021",
    "score_2022",
    "spacing_zyx",
    "summarize",
    "surface_dice",
    "surface_distances",
    "visualize_case",
    "visualize_dataset",
    "volume",
]
