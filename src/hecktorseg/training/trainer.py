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

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hecktorseg.config import from_dict, save_yaml, to_dict
from hecktorseg.data import PreprocessedDataset
from hecktorseg.data.dataset import sample_seed
from hecktorseg.errors import CheckpointError, ConfigError, DataError
from hecktorseg.io import ensure_output_dir
from hecktorseg.losses import build_loss
from hecktorseg.models import SIZE_DIVISOR, probe_model, read_checkpoint_file, save_checkpoint, unwrap_model
from hecktorseg.preprocessing import read_manifest
from hecktorseg.runtime import set_threads
from hecktorseg.training.classes import aggregated_dice, dataset_n_classes, selection_score
from hecktorseg.training.config import TrainConfig
from hecktorseg.training.device import train_device, train_precision
from hecktorseg.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    init_distributed,
)
from hecktorseg.training.factory import build_augmentation, build_train_model, train_model_kwargs
from hecktorseg.training.history import EpochMetrics, class_name, plot_learning_curves, write_metrics_csv
from hecktorseg.training.loaders import make_loaders
from hecktorseg.training.resume import check_resumed_config, prepare_on_rank0
from hecktorseg.training.seeding import deterministic_algorithms, rng_state, seed_everything, set_rng_state
from hecktorseg.training.splits import fold_splits, labelled_ids, left_out_cases, paper_fold_coverage
from hecktorseg.training.steps import eval_step_stats, train_step
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["TrainResult", "Trainer", "train"]

logger = logging.getLogger(__name__)


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
        self.device = train_device(config, self.ctx)
        self.amp_dtype, use_scaler = train_precision(config, self.device)
        self.memory_format = torch.channels_last_3d if config.channels_last else torch.contiguous_format
        set_threads(config.num_threads)
        if model is None:
            seed_everything(config.seed)
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

        self.train_sampler, self.train_loader, self.val_loader = make_loaders(
            config, train_dataset, val_dataset, self.ctx, self.device
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
            "rng": rng_state(),
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
            check_resumed_config(saved, self.config, src)
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
            set_rng_state(rng)
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
        with deterministic_algorithms(config.deterministic, self.device):
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
        barrier(self.ctx)
        return self.result()

    def _run_epoch(self, epoch: int, progress: ProgressCallback | None) -> None:
        config = self.config
        start = time.perf_counter()
        seed_everything(sample_seed(config.seed, epoch, -1))
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


def _check_grid(size: Sequence[int], data: Path) -> None:
    bad = [int(v) for v in size if int(v) % SIZE_DIVISOR]
    if bad:
        raise DataError(
            f"the preprocessed grid {list(size)} has sides that are not multiples of {SIZE_DIVISOR}, "
            "which the network needs",
            path=data / "manifest.json",
            hint="preprocess again with e.g. size=144 (or 32, 48, ...)",
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
