"""The training loop: cross-validated folds, checkpoints, metrics, exact resume, AMP and DDP.

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

Reproducibility: weights are initialised from ``seed``; the data order of epoch
``e`` is a shuffle seeded by ``seed + e`` and the augmentation of sample ``i`` in
epoch ``e`` comes from ``(seed, e, i)``; the global RNGs are reseeded from
``(seed, e)`` at the start of each epoch. Nothing depends on what happened in
earlier epochs except the model/optimizer/scheduler states, which ``last.pt``
holds — so a resumed run reproduces an uninterrupted one exactly (on CPU, with
``deterministic``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from hecktorseg.config import from_dict, save_yaml, to_dict
from hecktorseg.data import (
    Compose,
    EpochTaggedSampler,
    PreprocessedDataset,
    RandomMirror,
    RandomRotation,
    SequentialRotation,
)
from hecktorseg.data.augmentation import Transform
from hecktorseg.data.dataset import sample_seed
from hecktorseg.errors import CheckpointError, ConfigError, DataError
from hecktorseg.io import ensure_output_dir
from hecktorseg.losses import build_loss
from hecktorseg.models import (
    SIZE_DIVISOR,
    build_model,
    probe_model,
    read_checkpoint_file,
    save_checkpoint,
    unwrap_model,
)
from hecktorseg.preprocessing import read_manifest
from hecktorseg.runtime import Precision, autocast_dtype, resolve_device, resolve_precision, set_threads
from hecktorseg.training.classes import aggregated_dice, dataset_n_classes, selection_score
from hecktorseg.training.config import TrainConfig
from hecktorseg.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_text,
    cleanup_distributed,
    init_distributed,
)
from hecktorseg.training.history import EpochMetrics, class_name, plot_learning_curves, write_metrics_csv
from hecktorseg.training.splits import Split, make_splits, paper_fold_coverage, save_split
from hecktorseg.training.steps import eval_step_stats, train_step
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = [
    "RESULT_FILES",
    "TrainResult",
    "Trainer",
    "build_augmentation",
    "build_train_model",
    "fold_splits",
    "left_out_cases",
    "prepare_fold_dir",
    "train",
    "train_all_folds",
]

logger = logging.getLogger(__name__)

RESULT_FILES = ("last.pt", "best.pt", "metrics.csv", "learning_curves.png", "config.yaml", "split.json")
"""Files a training run writes into its fold folder."""

_TRAINED_FILES = ("last.pt", "best.pt", "metrics.csv", "learning_curves.png")
# Written once an epoch has finished: only these make a fold "results" that a new run must not
# overwrite. config.yaml and split.json alone are what a run that failed before training left.

# Fields that may change between a run and its resumption without breaking it.
_RESUME_FREE = frozenset(
    {
        "epochs",
        "device",
        "num_workers",
        "num_threads",
        "cache",
        "plot",
        "val_interval",
        "max_val_batches",
        "deterministic",
        "channels_last",
    }
)


@attrs.frozen
class TrainResult:
    """What a finished (or resumed-and-finished) training run produced.

    Attributes
    ----------
    fold_dir
        ``OUT/fold_K``.
    best_checkpoint, last_checkpoint
        ``best.pt`` (highest validation score) and ``last.pt``.
    best_dice
        Best validation score (NaN if never validated): the mean validation Dice for
        binary models; for GTVp + GTVn models the mean of the GTVp Dice and the GTVn
        aggregated Dice (:func:`hecktorseg.training.classes.selection_score`).
    best_epoch
        1-based epoch of ``best.pt`` (0 if none).
    metrics_csv
        ``metrics.csv``.
    history
        Metrics of every epoch.
    """

    fold_dir: Path
    best_checkpoint: Path
    last_checkpoint: Path
    best_dice: float
    best_epoch: int
    metrics_csv: Path
    history: tuple[EpochMetrics, ...] = ()


def _train_device(config: TrainConfig, ctx: DistContext | None = None) -> torch.device:
    """The device to train on (``cuda:LOCAL_RANK`` under torchrun)."""
    local_rank = ctx.local_rank if ctx is not None else 0
    try:
        return resolve_device(config.device, local_rank=local_rank)
    except ConfigError as exc:
        raise ConfigError(f"train.device: {exc.message}", hint=exc.hint) from None


def _train_precision(config: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """Autocast dtype (``None``: float32) and whether to use a gradient scaler.

    ``amp: null`` means on for CUDA (float16 + scaler), off on CPU. An explicit
    ``amp: true`` on CPU uses bfloat16 unless ``amp_dtype`` says otherwise.
    """
    use = config.amp if config.amp is not None else device.type == "cuda"
    if not use:
        return None, False
    if config.amp_dtype == "auto":
        precision: Precision = "fp16" if device.type == "cuda" else "bf16"
    else:
        precision = resolve_precision(config.amp_dtype, torch.device("cuda"))
    dtype = autocast_dtype(precision)
    return dtype, dtype == torch.float16 and device.type == "cuda"


def build_augmentation(config: TrainConfig, image_fill: Sequence[float] = (-1024.0, 0.0)) -> Transform | None:
    """The augmentation (rotation, then mirroring) of ``config``; ``None`` if all off.

    ``rotation_mode="sequential"`` gives the paper's :class:`~hecktorseg.data.SequentialRotation`
    (an optional zoom then follows as a separate step), ``"composed"`` hecktorseg's
    :class:`~hecktorseg.data.RandomRotation`.

    Parameters
    ----------
    config
        Rotation / mirror / zoom probabilities and ranges.
    image_fill
        Raw-unit fill values of [CT, PET] for the area rotated in (the dataset's
        ``ct_fill``, ``pet_fill``), unless ``config.rotation_fill`` is set.
    """
    fill = tuple(config.rotation_fill) if config.rotation_fill is not None else tuple(image_fill)
    transforms: list[Transform] = []
    rotate = config.rotation_p > 0 and config.max_angle > 0
    if config.rotation_mode == "sequential":
        if rotate:
            transforms.append(
                SequentialRotation(
                    config.rotation_p, config.max_angle, axes=config.rotation_axes, image_fill=fill
                )
            )
        if config.scale_p > 0:
            transforms.append(
                RandomRotation(
                    0.0, 0.0, image_fill=fill, scale_p=config.scale_p, scale_range=config.scale_range
                )
            )
    elif rotate or config.scale_p > 0:
        transforms.append(
            RandomRotation(
                config.rotation_p if config.max_angle > 0 else 0.0,
                config.max_angle,
                axes=config.rotation_axes,
                image_fill=fill,
                scale_p=config.scale_p,
                scale_range=config.scale_range,
            )
        )
    if config.mirror_p > 0:
        transforms.append(RandomMirror(config.mirror_p, axes=config.mirror_axes))
    return Compose(transforms) if transforms else None


def _model_kwargs(config: TrainConfig, in_channels: int, n_classes: int | None = None) -> dict[str, Any]:
    classes = n_classes if n_classes is not None else config.n_classes
    kwargs: dict[str, Any] = {
        "in_channels": in_channels,
        "n_classes": classes if classes is not None else 1,
        "n_filters": config.n_filters,
    }
    if config.model == "senorm_unet":
        kwargs["reduction"] = config.reduction
    return kwargs


def build_train_model(
    config: TrainConfig, in_channels: int = 2, *, n_classes: int | None = None
) -> nn.Module:
    """The network described by ``config`` (weights from the current torch RNG).

    ``n_classes`` overrides ``config.n_classes``; when both are ``None`` the model has one output.
    """
    return build_model(config.model, **_model_kwargs(config, in_channels, n_classes))


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - the legacy global RNG is what user code sees


def _rng_state() -> dict[str, Any]:
    np_state: tuple[Any, ...] = tuple(np.random.get_state(legacy=True))  # noqa: NPY002
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    if isinstance(state.get("torch"), Tensor):
        torch.set_rng_state(state["torch"])
    np_state = state.get("numpy")
    if isinstance(np_state, (list, tuple)) and len(np_state) == 5:
        np.random.set_state(  # noqa: NPY002
            (
                str(np_state[0]),
                np.asarray(np_state[1], dtype=np.uint32),
                int(np_state[2]),
                int(np_state[3]),
                float(np_state[4]),
            )
        )
    py_state = state.get("python")
    if isinstance(py_state, (list, tuple)) and len(py_state) == 3:
        random.setstate((int(py_state[0]), tuple(int(v) for v in py_state[1]), py_state[2]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(cuda))


def _refuse_overwrite(fold_dir: Path) -> None:
    existing = [name for name in _TRAINED_FILES if (fold_dir / name).exists()]
    if existing:
        raise ConfigError(
            f"results already exist ({', '.join(existing)})",
            path=fold_dir,
            hint="pass --resume to continue training or --force to start over",
        )


def prepare_fold_dir(fold_dir: PathLike, *, resume: bool = False, force: bool = False) -> Path:
    """Create ``fold_dir``, refusing to overwrite earlier results unless asked.

    Only a run that finished an epoch leaves results (``last.pt``, ``best.pt``,
    ``metrics.csv``, ``learning_curves.png``); the ``config.yaml`` and ``split.json``
    of a run that failed before that are replaced without asking.

    Parameters
    ----------
    fold_dir
        ``OUT/fold_K``.
    resume
        Keep the existing files (training continues from ``last.pt``).
    force
        Delete the existing result files (:data:`RESULT_FILES`) and start over.

    Raises
    ------
    ConfigError
        Results exist and neither ``resume`` nor ``force`` was given.
    """
    path = Path(fold_dir)
    existing = [name for name in RESULT_FILES if (path / name).exists()]
    if existing and not resume:
        if not force:
            _refuse_overwrite(path)
        for name in existing:
            (path / name).unlink()
        if force:
            logger.info("removed earlier results in %s (--force)", path)
        else:
            logger.info("replacing %s of a run that stopped before training (%s)", ", ".join(existing), path)
    ensure_output_dir(path)
    return path


class Trainer:
    """Train one model on one fold, writing checkpoints and metrics to ``fold_dir``.

    Most users call :func:`train`; use the trainer directly to supply your own
    datasets, model or loss.

    Parameters
    ----------
    config
        The recipe.
    train_dataset, val_dataset
        Datasets of ``{"image", "label", ...}`` items; the training one should accept
        ``(epoch, index)`` keys (as :class:`~hecktorseg.data.PreprocessedDataset`
        does) so augmentation is seeded per epoch.
    fold_dir
        Output folder (created; see :func:`prepare_fold_dir` for overwrite rules).
    model
        The network (default: :func:`build_train_model` seeded with ``config.seed``).
        Checkpoints need a registered model (:func:`hecktorseg.models.register_model`).
    loss_fn
        ``loss_fn(logits, label) -> scalar`` (default: ``build_loss(config.loss)``).
    metadata
        Extra checkpoint metadata (``train`` = ``to_dict(config)`` is always added).
    ctx
        Distributed context (default: from the torchrun environment).
    n_classes
        Output channels when ``config.n_classes`` is ``None`` (default: from the
        manifest of ``train_dataset.data_dir`` for a
        :class:`~hecktorseg.data.PreprocessedDataset`, else 1).
    """

    def __init__(
        self,
        config: TrainConfig,
        train_dataset: Dataset[Any],
        val_dataset: Dataset[Any],
        fold_dir: PathLike,
        *,
        model: nn.Module | None = None,
        loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        metadata: Mapping[str, Any] | None = None,
        ctx: DistContext | None = None,
        n_classes: int | None = None,
    ) -> None:
        if config.n_classes is not None:
            n_classes = config.n_classes
        elif n_classes is None:
            data_dir = getattr(train_dataset, "data_dir", None)
            n_classes = dataset_n_classes(data_dir) if isinstance(data_dir, Path) else 1
        self.n_classes: int = int(n_classes)
        """Output channels of the model (``config.n_classes`` resolved)."""
        self.config = config
        self.fold_dir = Path(fold_dir)
        self.ctx = ctx if ctx is not None else DistContext()
        self.device = _train_device(config, self.ctx)
        self.amp_dtype, use_scaler = _train_precision(config, self.device)
        self.memory_format = torch.channels_last_3d if config.channels_last else torch.contiguous_format
        set_threads(config.num_threads)
        if model is None:
            _seed_everything(config.seed)
            model = build_train_model(config, n_classes=self.n_classes)
        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        self.net: nn.Module = self.model
        if self.ctx.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.loss_fn = loss_fn if loss_fn is not None else build_loss(config.loss)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
        )
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if config.scheduler == "cosine_warm_restarts":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                self.optimizer, T_0=config.t_0, T_mult=config.t_mult, eta_min=config.eta_min
            )
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.metadata = {**dict(metadata or {}), "train": to_dict(config), "n_classes": self.n_classes}
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.history: list[EpochMetrics] = []
        self.best_dice = -math.inf
        self.best_epoch = 0
        self.epoch = 0  # completed epochs

        sampler: DistributedSampler[Any] = DistributedSampler(
            train_dataset,
            num_replicas=self.ctx.world_size,
            rank=self.ctx.rank,
            shuffle=True,
            seed=config.seed,
            drop_last=False,
        )
        self.train_sampler = EpochTaggedSampler(sampler)
        pin = self.device.type == "cuda"
        # More loader processes than cores only adds contention (and a torch warning); the
        # augmentation is seeded per (seed, epoch, sample), so the count never changes results.
        workers = min(config.num_workers, os.cpu_count() or 1)
        if workers < config.num_workers:
            logger.info("num_workers %d capped to the %d CPU cores", config.num_workers, workers)
        self.train_loader: DataLoader[Any] = DataLoader(
            train_dataset,
            batch_size=config.batch_size,
            sampler=self.train_sampler,
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=workers > 0,
            drop_last=False,
        )
        shard = list(range(self.ctx.rank, len(val_dataset), self.ctx.world_size))  # type: ignore[arg-type]
        self.val_loader: DataLoader[Any] = DataLoader(
            Subset(val_dataset, shard),
            batch_size=config.batch_size,
            shuffle=False,
            num_workers=min(workers, max(1, len(shard))) if workers > 0 else 0,
            pin_memory=pin,
            persistent_workers=workers > 0,
        )

    # -- paths ------------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        """``fold_dir/last.pt``."""
        return self.fold_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        """``fold_dir/best.pt``."""
        return self.fold_dir / "best.pt"

    @property
    def metrics_path(self) -> Path:
        """``fold_dir/metrics.csv``."""
        return self.fold_dir / "metrics.csv"

    # -- state ------------------------------------------------------------------------------------
    def state_extra(self) -> dict[str, Any]:
        """Everything besides the weights that resuming needs (stored at the top level of ``last.pt``)."""
        return {
            "epoch": self.epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "history": [row.to_dict() for row in self.history],
            "best_dice": self.best_dice if math.isfinite(self.best_dice) else None,
            "best_epoch": self.best_epoch,
            "rng": _rng_state(),
        }

    def _metadata(self, **more: Any) -> dict[str, Any]:
        best = self.best_dice if math.isfinite(self.best_dice) else None
        return {
            **self.metadata,
            "epoch": self.epoch,
            "best_val_dice": best,
            "best_epoch": self.best_epoch,
            **more,
        }

    def load_state(self, path: PathLike | None = None) -> None:
        """Restore the full training state from ``last.pt`` (or ``path``).

        Raises
        ------
        CheckpointError
            Unreadable file, or one without training state.
        ConfigError
            The checkpoint was written with an incompatible configuration.
        """
        src = Path(path) if path is not None else self.last_path
        raw = read_checkpoint_file(src, map_location="cpu")
        if not isinstance(raw, dict) or "optimizer" not in raw or "state_dict" not in raw:
            raise CheckpointError("not a resumable training checkpoint (no optimizer state)", path=src)
        saved = (raw.get("metadata") or {}).get("train")
        if isinstance(saved, dict):
            current = to_dict(self.config)
            changed = sorted(
                k
                for k in current
                if k not in _RESUME_FREE and k in saved and _norm(saved[k]) != _norm(current[k])
            )
            if changed:
                raise ConfigError(
                    f"cannot resume: field(s) {', '.join(changed)} differ from the interrupted run",
                    path=src,
                    hint="resume with the same configuration, or pass --force to start over",
                )
        try:
            self.model.load_state_dict(raw["state_dict"])
            self.optimizer.load_state_dict(raw["optimizer"])
            if self.scheduler is not None and raw.get("scheduler") is not None:
                self.scheduler.load_state_dict(raw["scheduler"])
            if self.scaler is not None and raw.get("scaler") is not None:
                self.scaler.load_state_dict(raw["scaler"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"cannot restore the training state: {exc}", path=src) from None
        self.epoch = int(raw.get("epoch", 0))
        self.history = [EpochMetrics.from_dict(row) for row in raw.get("history", [])]
        best = raw.get("best_dice")
        self.best_dice = float(best) if best is not None else -math.inf
        self.best_epoch = int(raw.get("best_epoch", 0))
        rng = raw.get("rng")
        if isinstance(rng, dict):
            _set_rng_state(rng)
        logger.info("resumed from %s after epoch %d", src, self.epoch)

    # -- loop -------------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, progress: ProgressCallback | None) -> tuple[float, int, float]:
        config = self.config
        self.net.train()
        self.train_sampler.set_epoch(epoch)
        n_batches = len(self.train_loader)
        if config.max_train_batches_per_epoch is not None:
            n_batches = min(n_batches, config.max_train_batches_per_epoch)
        total_loss = 0.0
        count = 0
        samples = 0
        wait = 0.0
        start = time.perf_counter()
        tick = start
        for b, batch in enumerate(self.train_loader):
            if b >= n_batches:
                break
            wait += time.perf_counter() - tick
            loss = train_step(
                self.net,
                batch,
                self.loss_fn,
                self.optimizer,
                scaler=self.scaler,
                amp_dtype=self.amp_dtype,
                device=self.device,
                grad_clip=config.grad_clip,
                memory_format=self.memory_format,
            )
            if not math.isfinite(loss):
                raise DataError(
                    f"training loss became {loss} in epoch {epoch}",
                    hint="lower the learning rate, disable AMP, or check the data",
                )
            total_loss += loss
            count += 1
            samples += int(batch["image"].shape[0])
            tick = time.perf_counter()
            if progress is not None and self.ctx.is_main:
                speed = samples / max(tick - start, 1e-9)
                progress(
                    epoch - 1,
                    config.epochs,
                    f"{b + 1}/{n_batches} loss {total_loss / count:.3f} {speed:.2f}/s",
                )
        seconds = time.perf_counter() - start
        loss_sum, n = all_reduce_sum([total_loss, float(count)], self.ctx, self.device)
        if seconds > 0:
            logger.debug("epoch %d: data loading %.0f%% of %.1f s", epoch, 100 * wait / seconds, seconds)
        return loss_sum / max(n, 1.0), samples, seconds

    def validate(self) -> tuple[float, float]:
        """Mean validation loss and mean per-case Dice at ``config.threshold`` (over all processes)."""
        row = self.validate_metrics()
        return row.val_loss, row.val_dice

    def validate_metrics(self) -> EpochMetrics:
        """Validation loss, Dice, per-class Dice, aggregated Dice and score (over all processes).

        Returns an :class:`EpochMetrics` with ``epoch = 0`` and only the ``val_*`` fields set.
        """
        model = unwrap_model(self.net)
        model.eval()
        loss_sum = 0.0
        dice_sum = 0.0
        n_cases = 0
        n_fg = max(self.n_classes - 1, 0)
        class_dice = [0.0] * n_fg
        counts = [0.0] * (3 * n_fg)  # per class: intersection, predicted, true
        for b, batch in enumerate(self.val_loader):
            if self.config.max_val_batches is not None and b >= self.config.max_val_batches:
                break
            out = eval_step_stats(
                model,
                batch,
                self.loss_fn,
                threshold=self.config.threshold,
                amp_dtype=self.amp_dtype,
                device=self.device,
                memory_format=self.memory_format,
            )
            loss_sum += out.loss * len(out.dice)
            dice_sum += sum(out.dice)
            n_cases += len(out.dice)
            if out.overlaps is not None and n_fg:
                ov = out.overlaps  # (N, C-1, 3)
                inter, pred, true = ov[..., 0], ov[..., 1], ov[..., 2]
                total = pred + true
                dice = torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))
                for k in range(n_fg):
                    class_dice[k] += float(dice[:, k].sum())
                    counts[3 * k : 3 * k + 3] = [
                        counts[3 * k] + float(inter[:, k].sum()),
                        counts[3 * k + 1] + float(pred[:, k].sum()),
                        counts[3 * k + 2] + float(true[:, k].sum()),
                    ]
        totals = all_reduce_sum(
            [loss_sum, dice_sum, float(n_cases), *class_dice, *counts], self.ctx, self.device
        )
        loss_total, dice_total, cases = totals[0], totals[1], totals[2]
        if cases == 0:
            return EpochMetrics(0, math.nan, math.nan)
        mean_dice = dice_total / cases
        per_class = tuple(v / cases for v in totals[3 : 3 + n_fg])
        c = totals[3 + n_fg :]
        agg = tuple(aggregated_dice(c[3 * k], c[3 * k + 1], c[3 * k + 2]) for k in range(n_fg))
        return EpochMetrics(
            0,
            math.nan,
            math.nan,
            val_loss=loss_total / cases,
            val_dice=mean_dice,
            val_class_dice=per_class,
            val_class_dsc_agg=agg,
            val_score=selection_score(mean_dice, per_class, agg),
        )

    def _save_last(self) -> None:
        save_checkpoint(self.last_path, self.model, metadata=self._metadata(), extra=self.state_extra())

    def fit(self, *, resume: bool = False, progress: ProgressCallback | None = None) -> TrainResult:
        """Train until ``config.epochs`` (continuing from ``last.pt`` if ``resume`` and it exists).

        Parameters
        ----------
        resume
            Restore the state of ``last.pt`` first (without it: start from scratch).
        progress
            Called as ``progress(completed_epochs, epochs, message)`` during and after every epoch.
        """
        config = self.config
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        if config.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        try:
            if resume and self.last_path.exists():
                self.load_state()
            elif resume:
                logger.info("no %s yet: starting fold from scratch", self.last_path)
            if self.ctx.is_main:
                ensure_output_dir(self.fold_dir)
                save_yaml(config, self.fold_dir / "config.yaml")
            if progress is not None and self.ctx.is_main:
                progress(self.epoch, config.epochs, "starting")
            while self.epoch < config.epochs:
                self._run_epoch(self.epoch + 1, progress)
        finally:
            if config.deterministic and not deterministic_before:
                torch.use_deterministic_algorithms(False)
        barrier(self.ctx)
        return self.result()

    def _run_epoch(self, epoch: int, progress: ProgressCallback | None) -> None:
        config = self.config
        start = time.perf_counter()
        _seed_everything(sample_seed(config.seed, epoch, -1))
        lr = float(self.optimizer.param_groups[0]["lr"])
        train_loss, samples, train_seconds = self._train_epoch(epoch, progress)
        if self.scheduler is not None:
            self.scheduler.step()
        val = EpochMetrics(0, math.nan, math.nan)
        if epoch % config.val_interval == 0 or epoch == config.epochs:
            val = self.validate_metrics()
        val_loss, val_dice = val.val_loss, val.val_dice
        multi = bool(val.val_class_dice)
        score = val.val_score if multi else val_dice
        self.epoch = epoch
        row = EpochMetrics(
            epoch,
            lr,
            train_loss,
            val_loss,
            val_dice,
            time.perf_counter() - start,
            val_class_dice=val.val_class_dice,
            val_class_dsc_agg=val.val_class_dsc_agg,
            val_score=val.val_score if multi else math.nan,
        )
        self.history.append(row)
        improved = math.isfinite(score) and score > self.best_dice
        if improved:
            self.best_dice = score
            self.best_epoch = epoch
        if self.ctx.is_main:
            if improved:
                save_checkpoint(self.best_path, self.model, metadata=self._metadata())
            self._save_last()
            write_metrics_csv(self.history, self.metrics_path)
            if config.plot and math.isfinite(score):
                plot_learning_curves(self.history, self.fold_dir / "learning_curves.png")
        speed = samples / max(train_seconds, 1e-9)
        message = f"epoch {epoch}: loss {train_loss:.4f}"
        short = f"loss {train_loss:.3f}"
        if math.isfinite(val_dice) and multi:
            per_class = ", ".join(
                f"{class_name(k + 1).upper()} {d:.3f}" for k, d in enumerate(val.val_class_dice)
            )
            agg = ", ".join(
                f"{class_name(k + 1).upper()} {d:.3f}" for k, d in enumerate(val.val_class_dsc_agg) if k > 0
            )
            message += (
                f", val loss {val_loss:.4f}, val Dice {per_class}"
                + (f", DSCagg {agg}" if agg else "")
                + f", score {score:.3f} (best {self.best_dice:.3f})"
            )
            short += f" score {score:.3f}"
        elif math.isfinite(val_dice):
            message += f", val loss {val_loss:.4f}, val Dice {val_dice:.3f} (best {self.best_dice:.3f})"
            short += f" dice {val_dice:.3f}"
        short += f" {speed:.2f}/s"
        if self.ctx.is_main:
            logger.info("%s, lr %.2e, %.2f samples/s, %.1f s", message, lr, speed, row.seconds)
            if progress is not None:
                progress(epoch, config.epochs, short)

    def result(self) -> TrainResult:
        """The :class:`TrainResult` of the current state."""
        return TrainResult(
            fold_dir=self.fold_dir,
            best_checkpoint=self.best_path,
            last_checkpoint=self.last_path,
            best_dice=self.best_dice if math.isfinite(self.best_dice) else math.nan,
            best_epoch=self.best_epoch,
            metrics_csv=self.metrics_path,
            history=tuple(self.history),
        )


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _check_resumed_split(path: Path, split: Split, *, resume: bool) -> None:
    """Refuse to resume a fold whose cases changed since it started."""
    if not (resume and path.is_file() and (path.parent / "last.pt").is_file()):
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    if list(saved.get("train", [])) != list(split.train) or list(saved.get("val", [])) != list(split.val):
        raise ConfigError(
            "cannot resume: the cases of this fold differ from those of the interrupted run",
            path=path,
            hint="resume on the same dataset and split, or pass --force to start over",
        )


def _labelled_ids(data_dir: PathLike) -> list[str]:
    entries = read_manifest(data_dir).entries
    return sorted(pid for pid, entry in entries.items() if entry.label_path is not None)


def _check_grid(size: Sequence[int], data: Path) -> None:
    bad = [int(v) for v in size if int(v) % SIZE_DIVISOR]
    if bad:
        raise DataError(
            f"the preprocessed grid {list(size)} has sides that are not multiples of {SIZE_DIVISOR}, "
            "which the network needs",
            path=data / "manifest.json",
            hint="preprocess again with e.g. --size 144 (or 32, 48, ...)",
        )


def left_out_cases(entries: Mapping[str, Any], split: Split) -> dict[str, str]:
    """Why each case of a preprocessed dataset is in neither the training nor the validation set.

    Parameters
    ----------
    entries
        The manifest's entries (objects with a ``label_path``), by patient id.
    split
        The fold.

    Returns
    -------
    dict
        ``{patient_id: reason}``: ``"no label map"`` or ``"not in this fold of the split file"``.
    """
    used = set(split.train) | set(split.val)
    reasons: dict[str, str] = {}
    for pid, entry in entries.items():
        if pid in used:
            continue
        if getattr(entry, "label_path", None) is None:
            reasons[pid] = "no label map"
        else:
            reasons[pid] = "not in this fold of the split"
    return reasons


def _prepare_on_rank0(
    ctx: DistContext, fold_dir: Path, split: Split, config: TrainConfig, *, resume: bool, force: bool
) -> None:
    """Rank 0 decides whether the fold may start and writes ``split.json``; every rank learns the outcome.

    Only rank 0 looks at the fold folder, and the other ranks wait for its verdict, so a
    rank that arrives late never mistakes rank 0's fresh ``split.json`` for old results.
    """
    failure: BaseException | None = None
    message: str | None = None
    if ctx.is_main:
        try:
            prepare_fold_dir(fold_dir, resume=resume, force=force)
            _check_resumed_split(fold_dir / "split.json", split, resume=resume)
            save_split(split, fold_dir / "split.json", seed=config.seed)
        except Exception as exc:
            failure = exc
            message = str(exc) or type(exc).__name__
    message = broadcast_text(message, ctx)
    if failure is not None:
        raise failure
    if message is not None:
        raise ConfigError(f"rank 0 could not start this fold: {message}", path=fold_dir)


def fold_splits(data_dir: PathLike, config: TrainConfig) -> list[Split]:
    """All folds of ``config``'s split over the labelled cases of a preprocessed dataset."""
    manifest = read_manifest(data_dir)
    entries = manifest.entries
    ids = sorted(pid for pid, entry in entries.items() if entry.label_path is not None)
    if len(ids) < 2:
        raise DataError(
            f"found {len(ids)} labelled case(s); training needs at least 2",
            path=Path(data_dir) / "manifest.json",
            hint="preprocess a dataset with ground-truth masks",
        )
    centres = {pid: entry.centre for pid, entry in entries.items() if entry.centre}
    return make_splits(
        ids,
        method=config.split,
        n_folds=config.n_folds,
        seed=config.seed,
        split_file=config.split_file,
        centres=centres,
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
    splits = fold_splits(data, config)
    if config.fold >= len(splits):
        raise ConfigError(
            f"train.fold: {config.fold} is out of range; this split has {len(splits)} fold(s) "
            f"(0..{len(splits) - 1})"
        )
    split = splits[config.fold]
    if config.split == "paper":
        for message in paper_fold_coverage(_labelled_ids(data), config.fold).messages():
            logger.warning("%s", message)
    if not split.train or not split.val:
        raise ConfigError(
            f"train.fold: fold {config.fold} ({split.description}) has {len(split.train)} training and "
            f"{len(split.val)} validation case(s) in this dataset; both must be non-empty",
            hint="preprocess the cases of this fold, or choose another split",
        )
    fold_dir = Path(out_dir) / f"fold_{config.fold}"
    manifest = read_manifest(data)
    _check_grid(manifest.config.size, data)
    n_classes = config.n_classes if config.n_classes is not None else dataset_n_classes(manifest)
    # absurd sizes fail before anything is written
    probe_model(config.model, **_model_kwargs(config, 2, n_classes))
    probe = _train_device(config)
    ctx = init_distributed(probe.type)
    try:
        _prepare_on_rank0(ctx, fold_dir, split, config, resume=resume, force=force)
        if ctx.is_main:
            logger.info(
                "fold %d (%s): %d training / %d validation cases",
                config.fold,
                split.description,
                len(split.train),
                len(split.val),
            )
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


def train_all_folds(
    data_dir: PathLike,
    out_dir: PathLike,
    config: TrainConfig | None = None,
    *,
    folds: Iterable[int] | None = None,
    resume: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> list[TrainResult]:
    """Train the folds one after another (default: every fold of the split).

    To train folds in parallel instead, start one process per GPU, e.g.
    ``CUDA_VISIBLE_DEVICES=k hecktorseg train DATA OUT --fold k &`` for each ``k``.
    """
    config = config if config is not None else TrainConfig()
    if folds is None:
        folds = range(len(fold_splits(data_dir, config)))
    results = []
    for k in folds:
        logger.info("training fold %d", k)
        results.append(
            train(data_dir, out_dir, config, fold=k, resume=resume, force=force, progress=progress)
        )
    return results
