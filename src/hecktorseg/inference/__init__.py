"""Inference: submission-ready masks on the original CT grid from one model or an ensemble.

- :class:`Predictor` holds the loaded models (loaded once), averages their
  probabilities (ensemble) and optionally over the 8 mirrorings (test-time
  augmentation), preprocesses raw cases in memory with the checkpoint's
  settings and maps probabilities back onto the CT grid before thresholding.
- :func:`predict_dataset` predicts a dataset folder (``OUT/<PID>.nii.gz``),
  skipping finished cases and reporting failures.
- :func:`sliding_window_predict` blends overlapping windows with Gaussian
  weights for inputs larger than the network's grid.
"""

from hecktorseg.inference.batch import (
    PROBABILITY_DIR,
    UNCERTAINTY_DIR,
    predict_dataset,
)
from hecktorseg.inference.predictor import (
    MIRROR_AXES,
    CasePrediction,
    Predictor,
    PreprocessingChoice,
    apply_preprocessing_choice,
    keep_largest_component,
    preprocessing_name,
    resolve_device,
)
from hecktorseg.inference.sliding_window import gaussian_importance_map, sliding_window_predict, window_starts

__all__ = [
    "MIRROR_AXES",
    "PROBABILITY_DIR",
    "UNCERTAINTY_DIR",
    "CasePrediction",
    "Predictor",
    "PreprocessingChoice",
    "apply_preprocessing_choice",
    "gaussian_importance_map",
    "keep_largest_component",
    "predict_dataset",
    "preprocessing_name",
    "resolve_device",
    "sliding_window_predict",
    "window_starts",
]
