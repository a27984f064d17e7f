"""Cross-validation over folds: which folds a split has, and training them one after another."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from hecktorseg.training.config import TrainConfig
from hecktorseg.training.history import TrainResult
from hecktorseg.training.run import train
from hecktorseg.training.splits import fold_splits
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["folds_to_train", "train_all_folds"]

logger = logging.getLogger(__name__)

FoldProgress = Callable[[int], AbstractContextManager[ProgressCallback | None]]
"""Called with a fold number; gives a context (e.g. a progress bar) open while that fold trains."""


def folds_to_train(data_dir: PathLike, config: TrainConfig, *, all_folds: bool = False) -> list[int]:
    """The folds to train: every fold of ``config``'s split over ``data_dir``, or just ``config.fold``.

    Parameters
    ----------
    data_dir
        A preprocessed dataset (its manifest is read only when ``all_folds``).
    config
        Training settings (``split``, ``n_folds``, ``split_file``, ``seed``, ``fold``).
    all_folds
        Every fold of the split instead of ``config.fold``.
    """
    if not all_folds:
        return [config.fold]
    return list(range(len(fold_splits(data_dir, config))))


def train_all_folds(
    data_dir: PathLike,
    out_dir: PathLike,
    config: TrainConfig | None = None,
    *,
    folds: Iterable[int] | None = None,
    resume: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    fold_progress: FoldProgress | None = None,
    on_result: Callable[[int, TrainResult], None] | None = None,
) -> list[TrainResult]:
    """Train the folds one after another (default: every fold of the split).

    To train folds in parallel instead, start one process per GPU, e.g.
    ``CUDA_VISIBLE_DEVICES=k hecktorseg train DATA OUT --fold k &`` for each ``k``.

    Parameters
    ----------
    data_dir, out_dir, config, resume, force
        As for :func:`~hecktorseg.training.train` (fold ``K`` writes ``out_dir/fold_K``).
    folds
        The folds to train (default: :func:`folds_to_train` with ``all_folds=True``).
    progress
        ``callback(completed, total, message)`` for every fold (ignored with ``fold_progress``).
    fold_progress
        Per fold, a context manager giving that fold's progress callback (or ``None``), e.g. a
        progress bar titled with the fold.
    on_result
        Called with ``(fold, result)`` after each fold.

    Returns
    -------
    list of TrainResult
        One per fold, in order.
    """
    config = config if config is not None else TrainConfig()
    chosen = list(folds) if folds is not None else folds_to_train(data_dir, config, all_folds=True)
    results = []
    for k in chosen:
        logger.info("training fold %d", k)
        context = fold_progress(k) if fold_progress is not None else contextlib.nullcontext(progress)
        with context as callback:
            result = train(data_dir, out_dir, config, fold=k, resume=resume, force=force, progress=callback)
        results.append(result)
        if on_result is not None:
            on_result(k, result)
    return results
