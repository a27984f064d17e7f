"""Training one fold of a preprocessed dataset: :func:`train`, from the manifest to ``OUT/fold_K``.

Quick start (a small model on a preprocessed dataset, a few CPU minutes)::

    from hecktorseg.training import TrainConfig, train

    config = TrainConfig(n_filters=4, epochs=10, split="random", n_folds=4, rotation_p=0, mirror_p=0)
    result = train("preprocessed/", "runs/", config, fold=0)
    print(result.best_dice, result.best_checkpoint)

Outputs of fold ``K`` go to ``OUT/fold_K/``: ``last.pt`` (model + optimizer,
scheduler, scaler, epoch, history and RNG states; for ``resume``), ``best.pt`` (the
model with the best mean validation Dice), ``metrics.csv``, ``learning_curves.png``,
``config.yaml`` (the resolved :class:`~hecktorseg.training.TrainConfig`) and
``split.json``.

Classes: ``n_classes: null`` (the default) trains 3 outputs (background / GTVp /
GTVn) on a dataset whose labels include 2, else the paper's single output; the
validation of a multi-class model adds the Dice of each class, the aggregated
GTVn Dice and the selection score to ``metrics.csv`` (see
:mod:`hecktorseg.training.classes` for the exact score). Checkpoint metadata holds ``preprocess`` (the dataset's
preprocessing configuration) and ``train`` so inference can rebuild everything.

The loop itself, and how it is reproducible, is :class:`~hecktorseg.training.Trainer`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hecktorseg.config import from_dict, to_dict
from hecktorseg.data import PreprocessedDataset
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.models import SIZE_DIVISOR, probe_model
from hecktorseg.preprocessing import Manifest, read_manifest
from hecktorseg.training.classes import dataset_n_classes, foreground_cases
from hecktorseg.training.config import TrainConfig
from hecktorseg.training.device import train_device
from hecktorseg.training.distributed import cleanup_distributed, init_distributed
from hecktorseg.training.factory import build_augmentation, train_model_kwargs
from hecktorseg.training.history import TrainResult
from hecktorseg.training.resume import prepare_on_rank0
from hecktorseg.training.splits import fold_splits, labelled_ids, left_out_cases, paper_fold_coverage
from hecktorseg.training.trainer import Trainer
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["train"]

logger = logging.getLogger(__name__)


def _check_grid(size: Sequence[int], data: Path) -> None:
    bad = [int(v) for v in size if int(v) % SIZE_DIVISOR]
    if bad:
        raise DataError(
            f"the preprocessed grid {list(size)} has sides that are not multiples of {SIZE_DIVISOR}, "
            "which the network needs",
            path=data / "manifest.json",
            hint="preprocess again with e.g. size=144 (or 32, 48, ...)",
        )


def _warn_missing_classes(manifest: Manifest, train_ids: Sequence[str], n_classes: int, fold: int) -> None:
    """Warn when a class the model learns (label 1 … C−1; label 1 for one output) is in no training case."""
    counts = foreground_cases(manifest, train_ids)
    learned = list(range(1, max(n_classes, 2)))
    missing = [c for c in learned if not counts.get(c)]
    if missing == learned:
        logger.warning(
            "fold %d: none of the %d training cases has a labelled voxel (label %s) inside its box: the "
            "model can only learn to predict background — check the label maps and the boxes (the "
            "manifest records label_voxels and label_voxels_outside_box per case)",
            fold,
            len(train_ids),
            " or ".join(map(str, learned)),
        )
    elif missing:
        logger.warning(
            "fold %d: label %s is in none of the %d training cases: the model cannot learn it",
            fold,
            ", ".join(map(str, missing)),
            len(train_ids),
        )


def train(
    data_dir: PathLike,
    out_dir: PathLike,
    config: TrainConfig | None = None,
    *,
    fold: int | None = None,
    resume: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train one fold on a preprocessed dataset; results in ``out_dir/fold_K``.

    Works unchanged under ``torchrun`` (one process per GPU; the process group is
    joined here when ``WORLD_SIZE > 1`` and left at the end).

    Parameters
    ----------
    data_dir
        Preprocessed dataset (with ``manifest.json``).
    out_dir
        Output folder; this fold writes ``out_dir/fold_K/``.
    config
        The recipe (default: the paper's, :class:`TrainConfig`).
    fold
        Fold to train (default ``config.fold``).
    resume
        Continue from ``fold_K/last.pt`` if present.
    force
        Delete earlier results of this fold first.
    progress
        Called as ``progress(completed_epochs, epochs, message)``.

    Raises
    ------
    ConfigError
        Invalid fold or split, results exist without ``resume``/``force``, bad resume.
    DataError
        Missing or invalid dataset.
    """
    config = config if config is not None else TrainConfig()
    if fold is not None and fold != config.fold:
        config = from_dict(TrainConfig, {**to_dict(config), "fold": fold}, where="train")
    data = Path(data_dir)
    if not data.is_dir():
        raise DataError(
            "data directory not found", path=data, hint="give the output folder of 'hecktorseg preprocess'"
        )
    manifest = read_manifest(data)
    splits = fold_splits(data, config, manifest=manifest)
    if config.fold >= len(splits):
        raise ConfigError(
            f"train.fold: {config.fold} is out of range; this split has {len(splits)} fold(s) "
            f"(0..{len(splits) - 1})"
        )
    split = splits[config.fold]
    if config.split == "paper":
        for message in paper_fold_coverage(labelled_ids(manifest), config.fold).messages():
            logger.warning("%s", message)
    if not split.train or not split.val:
        raise ConfigError(
            f"train.fold: fold {config.fold} ({split.description}) has {len(split.train)} training and "
            f"{len(split.val)} validation case(s) in this dataset; both must be non-empty",
            hint="preprocess the cases of this fold, or choose another split",
        )
    fold_dir = Path(out_dir) / f"fold_{config.fold}"
    _check_grid(manifest.config.size, data)
    n_classes = config.n_classes if config.n_classes is not None else dataset_n_classes(manifest)
    # absurd sizes fail before anything is written
    probe_model(config.model, **train_model_kwargs(config, 2, n_classes))
    probe = train_device(config)
    ctx = init_distributed(probe.type)
    try:
        prepare_on_rank0(ctx, fold_dir, split, config, resume=resume, force=force)
        if ctx.is_main:
            logger.info(
                "fold %d (%s): %d training / %d validation cases",
                config.fold,
                split.description,
                len(split.train),
                len(split.val),
            )
            _warn_missing_classes(manifest, split.train, n_classes, config.fold)
            left_out = left_out_cases(manifest.entries, split)
            if left_out:
                logger.warning(
                    "fold %d: %d case(s) of %s left out: %s",
                    config.fold,
                    len(left_out),
                    data,
                    "; ".join(f"{pid} ({why})" for pid, why in sorted(left_out.items())),
                )
        fill = (float(manifest.config.ct_fill), float(manifest.config.pet_fill))
        train_ds = PreprocessedDataset(
            data,
            split.train,
            transform=build_augmentation(config, fill),
            cache=config.cache,
            seed=config.seed,
        )
        val_ds = PreprocessedDataset(data, split.val, cache=config.cache, seed=config.seed)
        metadata = {
            "preprocess": to_dict(manifest.config),
            "fold": config.fold,
            "split": split.to_dict(),
        }
        trainer = Trainer(config, train_ds, val_ds, fold_dir, metadata=metadata, ctx=ctx, n_classes=n_classes)
        return trainer.fit(resume=resume, progress=progress)
    finally:
        cleanup_distributed(ctx)
