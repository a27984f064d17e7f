"""Training: the paper's recipe as a typed, config-driven, resumable and distributed loop.

- :class:`TrainConfig`: every knob, with the paper's defaults;
- :func:`train` / :func:`train_all_folds`: cross-validated training on a
  preprocessed dataset (``OUT/fold_K/{last.pt, best.pt, metrics.csv, ...}``);
- :class:`Trainer`: the loop, for custom datasets, models or losses;
- :func:`train_step` / :func:`eval_step`: pure steps other engines can drive;
- :func:`make_splits`: leave-one-centre-out, random k-fold or file splits;
- :func:`dataset_n_classes` / :func:`selection_score`: outputs from the data (3 for GTVp + GTVn)
  and the score that selects ``best.pt``;
- :func:`init_distributed`: torchrun / DDP support.

Only :class:`TrainConfig` is imported eagerly (so the command line starts fast);
the other names load torch on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hecktorseg._lazy import lazy_exports
from hecktorseg.training.config import TrainConfig

if TYPE_CHECKING:
    from hecktorseg.training.classes import dataset_n_classes, selection_score
    from hecktorseg.training.distributed import DistContext, cleanup_distributed, init_distributed
    from hecktorseg.training.history import (
        EpochMetrics,
        plot_learning_curves,
        read_metrics_csv,
        write_metrics_csv,
    )
    from hecktorseg.training.splits import Split, centre_of, load_split_file, make_splits, save_split
    from hecktorseg.training.steps import (
        EvalBatch,
        autocast_context,
        batch_dice,
        class_overlaps,
        eval_step,
        eval_step_stats,
        train_step,
    )
    from hecktorseg.training.trainer import (
        RESULT_FILES,
        Trainer,
        TrainResult,
        build_augmentation,
        build_train_model,
        fold_splits,
        prepare_fold_dir,
        resolve_amp,
        resolve_device,
        train,
        train_all_folds,
    )

_LAZY = {
    "dataset_n_classes": "classes",
    "selection_score": "classes",
    "EvalBatch": "steps",
    "class_overlaps": "steps",
    "eval_step_stats": "steps",
    "DistContext": "distributed",
    "cleanup_distributed": "distributed",
    "init_distributed": "distributed",
    "EpochMetrics": "history",
    "plot_learning_curves": "history",
    "read_metrics_csv": "history",
    "write_metrics_csv": "history",
    "Split": "splits",
    "centre_of": "splits",
    "load_split_file": "splits",
    "make_splits": "splits",
    "save_split": "splits",
    "autocast_context": "steps",
    "batch_dice": "steps",
    "eval_step": "steps",
    "train_step": "steps",
    "RESULT_FILES": "trainer",
    "TrainResult": "trainer",
    "Trainer": "trainer",
    "build_augmentation": "trainer",
    "build_train_model": "trainer",
    "fold_splits": "trainer",
    "prepare_fold_dir": "trainer",
    "resolve_amp": "trainer",
    "resolve_device": "trainer",
    "train": "trainer",
    "train_all_folds": "trainer",
}

__all__ = [
    "RESULT_FILES",
    "DistContext",
    "EpochMetrics",
    "EvalBatch",
    "Split",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "autocast_context",
    "batch_dice",
    "build_augmentation",
    "build_train_model",
    "centre_of",
    "class_overlaps",
    "cleanup_distributed",
    "dataset_n_classes",
    "eval_step",
    "eval_step_stats",
    "fold_splits",
    "init_distributed",
    "load_split_file",
    "make_splits",
    "plot_learning_curves",
    "prepare_fold_dir",
    "read_metrics_csv",
    "resolve_amp",
    "resolve_device",
    "save_split",
    "selection_score",
    "train",
    "train_all_folds",
    "train_step",
    "write_metrics_csv",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
