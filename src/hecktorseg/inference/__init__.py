"""Inference: submission-ready masks on the original CT grid from one model or an ensemble.

- :class:`Predictor` holds the loaded models (loaded once), averages their
  probabilities (ensemble) and optionally over the 8 mirrorings (test-time
  augmentation), preprocesses raw cases in memory with the checkpoint's
  settings and maps probabilities back onto the CT grid before thresholding.
- :func:`select_runtime` / :func:`compile_model` pick and prepare the backend
  (torch, OpenVINO, ONNX Runtime) and precision the networks run with;
  :func:`prepare_openvino_cache` converts models ahead of time (container images).
- :func:`predict_dataset` predicts a dataset folder (``OUT/<PID>.nii.gz``),
  skipping finished cases and reporting failures; :func:`predict_dicom` a DICOM folder,
  with RTSTRUCT or DICOM-SEG results.
- :func:`keep_largest_component`, :func:`remove_small_components`: the largest GTVp component and the
  removal of small GTVn components (mm³ on the CT grid).
- :func:`sliding_window_predict` blends overlapping windows with Gaussian
  weights for inputs larger than the network's grid.
"""

from hecktorseg.inference.backends import (
    BACKENDS,
    INSTALL_COMMANDS,
    RuntimeChoice,
    VerifiedCombination,
    backend_available,
    compile_model,
    prepare_openvino_cache,
    select_runtime,
    verified_combinations,
)
from hecktorseg.inference.batch import (
    PROBABILITY_DIR,
    UNCERTAINTY_DIR,
    predict_dataset,
)
from hecktorseg.inference.dicom_predict import OUTPUT_FORMATS, looks_like_dicom, predict_dicom
from hecktorseg.inference.postprocess import (
    GTVN_LABEL,
    GTVP_LABEL,
    MIN_GTVN_VOLUME_MM3,
    keep_largest_component,
    postprocess_mask,
    remove_small_components,
)
from hecktorseg.inference.predictor import (
    MIRROR_AXES,
    CasePrediction,
    Predictor,
    PredictorConfig,
    PreprocessingChoice,
    apply_preprocessing_choice,
    preprocessing_name,
)
from hecktorseg.models.sliding_window import gaussian_importance_map, sliding_window_predict, window_starts

__all__ = [
    "BACKENDS",
    "GTVN_LABEL",
    "GTVP_LABEL",
    "INSTALL_COMMANDS",
    "MIN_GTVN_VOLUME_MM3",
    "MIRROR_AXES",
    "OUTPUT_FORMATS",
    "PROBABILITY_DIR",
    "UNCERTAINTY_DIR",
    "CasePrediction",
    "Predictor",
    "PredictorConfig",
    "PreprocessingChoice",
    "RuntimeChoice",
    "VerifiedCombination",
    "apply_preprocessing_choice",
    "backend_available",
    "compile_model",
    "gaussian_importance_map",
    "keep_largest_component",
    "looks_like_dicom",
    "postprocess_mask",
    "predict_dataset",
    "predict_dicom",
    "prepare_openvino_cache",
    "preprocessing_name",
    "remove_small_components",
    "select_runtime",
    "sliding_window_predict",
    "verified_combinations",
    "window_starts",
]
