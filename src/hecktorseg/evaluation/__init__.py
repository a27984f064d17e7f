"""Scoring segmentations: spacing-aware metrics, the official HECKTOR 2020–2026 rules, pictures.

- :mod:`~hecktorseg.evaluation.metrics`: Dice, precision, recall, HD95, ASSD,
  surface Dice and volumes on NumPy arrays (spacing in the array's axis order).
- :mod:`~hecktorseg.evaluation.scoring`: the per-case record, the checks
  every edition shares and the summaries; the per-case official scores by
  edition in :mod:`~hecktorseg.evaluation.scoring_box` (:func:`score_2020`,
  :func:`score_2021`) and :mod:`~hecktorseg.evaluation.scoring_2022`
  (:func:`score_2022`, the 2022 aggregated Dice).
- :mod:`~hecktorseg.evaluation.scoring_2025` and
  :mod:`~hecktorseg.evaluation.detection`: the 2025/2026 scores (GTVp mean
  Dice, GTVn aggregated Dice, aggregated F1 of lesion detection);
  :mod:`~hecktorseg.evaluation.ranking`: the 2025 ranking of several runs.
- :mod:`~hecktorseg.evaluation.rules`: each edition's rules as one
  :class:`EditionRules` record (:func:`get_rules`).
- :func:`evaluate`: a folder of predictions against a dataset, writing
  ``per_case.csv`` and ``summary.json``; :func:`evaluate_runs`: several
  folders, ranked (``ranking.csv``).
- :func:`visualize_case` / :func:`visualize_dataset`: PNG overlays.
"""

from hecktorseg.evaluation.detection import (
    IOU_THRESHOLD,
    LesionMatch,
    aggregated_f1,
    label_lesions,
    lesion_iou,
    match_lesions,
)
from hecktorseg.evaluation.evaluate import (
    EvaluationResult,
    GroundTruthCase,
    RankingResult,
    evaluate,
    evaluate_runs,
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
from hecktorseg.evaluation.ranking import RunRanking, rank_runs_2025
from hecktorseg.evaluation.rules import (
    EDITIONS,
    RULES,
    Edition,
    EditionRules,
    ScoringOptions,
    get_rules,
)
from hecktorseg.evaluation.scoring import CaseScore, summarize
from hecktorseg.evaluation.scoring_2022 import LABEL_NAMES_2022, aggregated_dice, score_2022
from hecktorseg.evaluation.scoring_2025 import LABEL_NAMES_2025, score_2025, summarize_2025
from hecktorseg.evaluation.scoring_box import check_box_overlaps, score_2020, score_2021
from hecktorseg.evaluation.visualize import find_visualization_cases, visualize_case, visualize_dataset

__all__ = [
    "EDITIONS",
    "IOU_THRESHOLD",
    "LABEL_NAMES_2022",
    "LABEL_NAMES_2025",
    "RULES",
    "CaseScore",
    "Edition",
    "EditionRules",
    "EvaluationResult",
    "GroundTruthCase",
    "LesionMatch",
    "RankingResult",
    "RunRanking",
    "ScoringOptions",
    "SurfaceDistances",
    "aggregated_dice",
    "aggregated_f1",
    "assd",
    "check_box_overlaps",
    "dice",
    "evaluate",
    "evaluate_runs",
    "find_ground_truth",
    "find_prediction",
    "find_visualization_cases",
    "get_rules",
    "hd95",
    "label_lesions",
    "lesion_iou",
    "match_lesions",
    "metric_columns",
    "precision",
    "rank_runs_2025",
    "recall",
    "score_2020",
    "score_2021",
    "score_2022",
    "score_2025",
    "spacing_zyx",
    "summarize",
    "summarize_2025",
    "surface_dice",
    "surface_distances",
    "visualize_case",
    "visualize_dataset",
    "volume",
]
