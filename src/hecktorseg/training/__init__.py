"""Training: the SE-norm U-Net recipe as a typed, config-driven, resumable and distributed loop.

- :class:`TrainConfig`: every knob, with hecktorseg's defaults; :meth:`TrainConfig.paper`
  is the paper's recipe exactly;
- :func:`train` / :func:`train_all_folds`: cross-validated training on a
  preprocessed dataset (:func:`folds_to_train` says which folds a split has) (``OUT/fold_K/{last.pt, best.pt, metrics.csv, ...}``);
- :class:`Trainer`: the loop, for custom datasets, models or losses;
- :func:`train_step` / :func:`eval_step`: pure steps other engines can drive;
- :func:`make_splits`: leave-one-centre-out, random k-fold, file splits, or the
  paper's own eight folds (:func:`paper_splits`);
- :func:`init_distributed`, :func:`is_main_process`: torchrun / DDP support.
- :func:`dataset_n_classes` / :func:`selection_score`: outputs from the data (3 for GTVp + GTVn)
  and the score that selects ``best.pt``;

Only :class:`TrainConfig` is imported eagerly (so the command line starts fast);
the other names load torch on first access. ``_EXPORTS`` is the one list of public
names (name → sub-module): ``__all__`` and the lazy imports derive from it, and the
``TYPE_CHECKING`` block mirrors it for type checkers (a test keeps them equal).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hecktorseg._lazy import lazy_exports
from hecktorseg.training.config import TrainConfig as TrainConfig

if TYPE_CHECKING:
    from hecktorseg.training.classes import dataset_label_values as dataset_label_values
    from hecktorseg.training.classes import dataset_n_classes as dataset_n_classes
    from hecktorseg.training.classes import resolve_loss_defaults as resolve_loss_defaults
    from hecktorseg.training.classes import selection_score as selection_score
    from hecktorseg.training.distributed import DistContext as DistContext
    from hecktorseg.training.distributed import cleanup_distributed as cleanup_distributed
    from hecktorseg.training.distributed import init_distributed as init_distributed
    from hecktorseg.training.distributed import is_main_process as is_main_process
    from hecktorseg.training.factory import build_augmentation as build_augmentation
    from hecktorseg.training.factory import build_train_loss as build_train_loss
    from hecktorseg.training.factory import build_train_model as build_train_model
    from hecktorseg.training.folds import folds_to_train as folds_to_train
    from hecktorseg.training.folds import train_all_folds as train_all_folds
    from hecktorseg.training.history import EpochMetrics as EpochMetrics
    from hecktorseg.training.history import TrainResult as TrainResult
    from hecktorseg.training.history import plot_learning_curves as plot_learning_curves
    from hecktorseg.training.history import read_metrics_csv as read_metrics_csv
    from hecktorseg.training.history import write_metrics_csv as write_metrics_csv
    from hecktorseg.training.run import train as train
    from hecktorseg.training.runinfo import RunInfo as RunInfo
    from hecktorseg.training.splits import PaperFoldCoverage as PaperFoldCoverage
    from hecktorseg.training.splits import Split as Split
    from hecktorseg.training.splits import fold_splits as fold_splits
    from hecktorseg.training.splits import load_split_file as load_split_file
    from hecktorseg.training.splits import make_splits as make_splits
    from hecktorseg.training.splits import paper_fold_coverage as paper_fold_coverage
    from hecktorseg.training.splits import paper_splits as paper_splits
    from hecktorseg.training.splits import save_split as save_split
    from hecktorseg.training.steps import eval_step as eval_step
    from hecktorseg.training.steps import train_step as train_step
    from hecktorseg.training.trainer import Trainer as Trainer

# The one list of public names: name → sub-module that defines it.
_EXPORTS = {
    "TrainConfig": "config",
    "dataset_label_values": "classes",
    "dataset_n_classes": "classes",
    "resolve_loss_defaults": "classes",
    "selection_score": "classes",
    "DistContext": "distributed",
    "cleanup_distributed": "distributed",
    "init_distributed": "distributed",
    "is_main_process": "distributed",
    "build_augmentation": "factory",
    "build_train_loss": "factory",
    "build_train_model": "factory",
    "folds_to_train": "folds",
    "train_all_folds": "folds",
    "EpochMetrics": "history",
    "TrainResult": "history",
    "plot_learning_curves": "history",
    "read_metrics_csv": "history",
    "write_metrics_csv": "history",
    "PaperFoldCoverage": "splits",
    "Split": "splits",
    "fold_splits": "splits",
    "load_split_file": "splits",
    "make_splits": "splits",
    "paper_fold_coverage": "splits",
    "paper_splits": "splits",
    "save_split": "splits",
    "train": "run",
    "RunInfo": "runinfo",
    "eval_step": "steps",
    "train_step": "steps",
    "Trainer": "trainer",
}

__all__ = list(_EXPORTS)  # built from the one list above

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
