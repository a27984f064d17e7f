"""Training: the SE-norm U-Net recipe as a typed, config-driven, resumable and distributed loop.

- :class:`TrainConfig`: every knob, with hecktorseg's defaults; :meth:`TrainConfig.paper`
  is the paper's recipe exactly;
- :func:`train` / :func:`train_all_folds`: cross-validated training on a
  preprocessed dataset (``OUT/fold_K/{last.pt, best.pt, metrics.csv, ...}``);
- :class:`Trainer`: the loop, for custom datasets, models or losses;
- :func:`train_step` / :func:`eval_step`: pure steps other engines can drive;
- :func:`make_splits`: leave-one-centre-out, random k-fold, file splits, or the
  paper's own eight folds (:func:`paper_splits`);
- :func:`init_distributed`: torchrun / DDP support.

Only :class:`TrainConfig` is imported eagerly (so the command line starts fast);
the other names load torch on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hecktorseg._lazy import lazy_exports
from hecktorseg.training.config import TrainConfig

if TYPE_CHECKING:
    from hecktorseg.training.distributed import DistContext, cleanup_distributed, init_distributed
    from hecktorseg.training.history import (
        EpochMetrics,
        plot_learning_curves,
        read_metrics_csv,
        write_metrics_csv,
    )
    from hecktorseg.training.splits import (
        PaperFoldCoverage,
        Split,
        centre_of,
        load_split_file,
        make_splits,
        paper_fold_coverage,
        paper_splits,
        save_split,
    )
    from hecktorseg.training.steps import batch_dice, eval_step, train_step
    from hecktorseg.training.trainer import (
        RESULT_FILES,
        Trainer,
        TrainResult,
        build_augmentation,
        build_train_model,
        fold_splits,
        left_out_cases,
        prepare_fold_dir,
        train,
        train_all_folds,
    )

_LAZY = {
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
    "PaperFoldCoverage": "splits",
    "paper_fold_coverage": "splits",
    "paper_splits": "splits",
    "save_split": "splits",
    "batch_dice": "steps",
    "eval_step": "steps",
    "train_step": "steps",
    "RESULT_FILES": "trainer",
    "TrainResult": "trainer",
    "Trainer": "trainer",
    "build_augmentation": "trainer",
    "build_train_model": "trainer",
    "fold_splits": "trainer",
    "left_out_cases": "trainer",
    "prepare_fold_dir": "trainer",
    "train": "trainer",
    "train_all_folds": "trainer",
}

__all__ = [
    "RESULT_FILES",
    "DistContext",
    "EpochMetrics",
    "PaperFoldCoverage",
    "Split",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "batch_dice",
    "build_augmentation",
    "build_train_model",
    "centre_of",
    "cleanup_distributed",
    "eval_step",
    "fold_splits",
    "init_distributed",
    "left_out_cases",
    "load_split_file",
    "make_splits",
    "paper_fold_coverage",
    "paper_splits",
    "plot_learning_curves",
    "prepare_fold_dir",
    "read_metrics_csv",
    "save_split",
    "train",
    "train_all_folds",
    "train_step",
    "write_metrics_csv",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
