"""The training loop: one model on one fold, with checkpoints, metrics, exact resume, AMP and DDP.

:class:`Trainer` runs the epochs; :func:`hecktorseg.training.train` sets it up from a
preprocessed dataset.

Reproducibility: weights are initialised from ``seed``; the data order of epoch
``e`` is a shuffle seeded by ``seed + e`` and the augmentation of sample ``i`` in
epoch ``e`` comes from ``(seed, e, i)``; the global RNGs are reseeded from
``(seed, e)`` at the start of each epoch. Nothing depends on what happened in
earlier epochs except the model/optimizer/scheduler states, which ``last.pt``
holds — so a resumed run reproduces an uninterrupted one exactly (on CPU, with
``deterministic``).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from hecktorseg.config import save_yaml, to_dict
from hecktorseg.data.dataset import sample_seed
from hecktorseg.errors import CheckpointError, DataError
from hecktorseg.io import ensure_output_dir
from hecktorseg.models import read_checkpoint_file, save_checkpoint, unwrap_model
from hecktorseg.runtime import set_threads
from hecktorseg.training.classes import (
    aggregated_dice,
    dataset_n_classes,
    resolve_loss_defaults,
    selection_score,
)
from hecktorseg.training.config import TrainConfig
from hecktorseg.training.device import train_device, train_precision
from hecktorseg.training.device_data import augment_device_name, device_batches_for
from hecktorseg.training.distributed import DistContext, all_reduce_sum, barrier
from hecktorseg.training.factory import build_train_loss, build_train_model, patch_window
from hecktorseg.training.history import (
    EpochMetrics,
    TrainResult,
    epoch_messages,
    plot_learning_curves,
    write_metrics_csv,
)
from hecktorseg.training.loaders import make_loaders
from hecktorseg.training.resume import check_resumed_config
from hecktorseg.training.runinfo import RunInfo, apply_tf32
from hecktorseg.training.seeding import deterministic_algorithms, rng_state, seed_everything, set_rng_state
from hecktorseg.training.steps import eval_step_stats, train_step_loss
from hecktorseg.training.writer import BackgroundWriter
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)


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
        Output folder (created; see :func:`~hecktorseg.training.resume.prepare_fold_dir` for overwrite rules).
    model
        The network (default: :func:`build_train_model` seeded with ``config.seed``).
        Checkpoints need a registered model (:func:`hecktorseg.models.register_model`).
    loss_fn
        ``loss_fn(logits, label) -> scalar`` (default: :func:`build_train_loss` of ``config``).
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
        config = resolve_loss_defaults(config, self.n_classes)
        if self.n_classes > 3:
            logger.warning(
                "n_classes=%d: HECKTOR labels are 0 (background), 1 (GTVp) and 2 (GTVn); channels 3 to %d "
                "learn labels the data never holds (each scores Dice 1.0), and predictions may hold them",
                self.n_classes,
                self.n_classes - 1,
            )
        self.config = config
        """The recipe as it runs (``loss: auto`` and ``dice_skip_absent: null`` resolved)."""
        self.fold_dir = Path(fold_dir)
        self.ctx = ctx if ctx is not None else DistContext()
        self.device = train_device(config, self.ctx)
        self.amp_dtype, use_scaler = train_precision(config, self.device)
        tf32 = apply_tf32(config.tf32, self.device)
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
        if config.compile:
            self.net = torch.compile(self.net)  # type: ignore[assignment]
        self.loss_fn = loss_fn if loss_fn is not None else build_train_loss(config, self.n_classes)
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
        self.device_batches = device_batches_for(config, train_dataset, self.device)
        self.runtime = RunInfo.resolve(
            self.device,
            self.amp_dtype,
            grad_scaler=self.scaler is not None,
            batch_size=config.batch_size,
            world_size=self.ctx.world_size,
            augment_device=augment_device_name(train_dataset, self.device_batches),
            channels_last=config.channels_last,
            compiled=config.compile,
            tf32=tf32,
            cudnn_benchmark=(config.cudnn_benchmark and not config.deterministic)
            if tf32 is not None
            else None,
        )
        """What this run resolved to (device, precision, batch, augmentation device, options)."""
        self.metadata["runtime"] = self.runtime.to_dict()
        self.background_writes: bool = self.device.type == "cuda"
        """Write checkpoints, metrics and plots on a background thread (by default on CUDA)."""
        self._writer = BackgroundWriter(False)

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
        # The loss stays on the device and is summed there; the host reads it (one synchronisation)
        # only every `interval` steps and after the last. On the CPU reading it costs nothing: every step.
        interval = config.log_interval if self.device.type == "cuda" else 1
        running = torch.zeros((), dtype=torch.float64, device=self.device)
        total_loss = 0.0
        count = 0
        samples = 0
        wait = 0.0
        start = time.perf_counter()
        tick = start
        batches = (
            self.device_batches.batches(self.train_sampler)
            if self.device_batches is not None
            else self.train_loader
        )
        for b, batch in enumerate(batches):
            if b >= n_batches:
                break
            wait += time.perf_counter() - tick
            loss = train_step_loss(
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
            running += loss.double()
            count += 1
            samples += int(batch["image"].shape[0])
            tick = time.perf_counter()
            if (b + 1) % interval and b + 1 < n_batches:
                continue
            total_loss = float(running)
            if not math.isfinite(total_loss):
                raise DataError(
                    f"training loss became {total_loss} in epoch {epoch} (by step {b + 1})",
                    hint="lower the learning rate, disable AMP, or check the data",
                )
            if progress is not None and self.ctx.is_main:
                speed = samples / max(tick - start, 1e-9)
                progress(
                    epoch - 1,
                    config.epochs,
                    f"{b + 1}/{n_batches} loss {total_loss / count:.3f} {speed:.2f}/s",
                )
        total_loss = float(running)
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
        class_dice = [0.0] * n_fg  # per class: sum of per-case Dice over the cases holding it
        class_cases = [0.0] * n_fg  # per class: cases whose label map holds it
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
                window=patch_window(self.config),
            )
            loss_sum += out.loss * len(out.dice)
            dice_sum += sum(out.dice)
            n_cases += len(out.dice)
            if out.overlaps is not None and n_fg:
                ov = out.overlaps  # (N, C-1, 3)
                inter, pred, true = ov[..., 0], ov[..., 1], ov[..., 2]
                # a case without the class in its truth has no Dice for it ("no node predicted,
                # no node there" is no skill); its false positives count in the aggregated Dice.
                holds = true > 0
                dice = torch.where(holds, 2 * inter / (pred + true).clamp_min(1), torch.zeros_like(true))
                for k in range(n_fg):
                    class_dice[k] += float(dice[:, k].sum())
                    class_cases[k] += float(holds[:, k].sum())
                    counts[3 * k : 3 * k + 3] = [
                        counts[3 * k] + float(inter[:, k].sum()),
                        counts[3 * k + 1] + float(pred[:, k].sum()),
                        counts[3 * k + 2] + float(true[:, k].sum()),
                    ]
        totals = all_reduce_sum(
            [loss_sum, dice_sum, float(n_cases), *class_dice, *class_cases, *counts], self.ctx, self.device
        )
        loss_total, dice_total, cases = totals[0], totals[1], totals[2]
        if cases == 0:
            return EpochMetrics(0, math.nan, math.nan)
        mean_dice = dice_total / cases
        sums, holding = totals[3 : 3 + n_fg], totals[3 + n_fg : 3 + 2 * n_fg]
        per_class = tuple(v / n if n else math.nan for v, n in zip(sums, holding, strict=True))
        c = totals[3 + 2 * n_fg :]
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

    def _write_results(self, improved: bool, *, plot: bool) -> None:
        """``best.pt`` (if ``improved``), ``last.pt``, ``metrics.csv`` and the plot, via the writer.

        A background writer gets snapshots (copies of the weights and the optimizer state, taken
        now), so what it writes is this epoch's state whatever training does meanwhile.
        """
        writer = self._writer
        model, extra = self.model, self.state_extra()
        if writer.enabled:
            model, extra = copy.deepcopy(model), copy.deepcopy(extra)
        metadata = self._metadata()
        history = list(self.history)
        if improved:
            writer.submit(save_checkpoint, self.best_path, model, metadata=metadata)
        writer.submit(save_checkpoint, self.last_path, model, metadata=metadata, extra=extra)
        writer.submit(write_metrics_csv, history, self.metrics_path)
        if plot:
            writer.submit(plot_learning_curves, history, self.fold_dir / "learning_curves.png")

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
        with deterministic_algorithms(config.deterministic, self.device, benchmark=config.cudnn_benchmark):
            if resume and self.last_path.exists():
                self.load_state()
            elif resume:
                logger.info("no %s yet: starting fold from scratch", self.last_path)
            if self.ctx.is_main:
                ensure_output_dir(self.fold_dir)
                save_yaml(config, self.fold_dir / "config.yaml", header=self.runtime.yaml_comment())
                logger.info("training on %s", self.runtime.describe())
            if progress is not None and self.ctx.is_main:
                progress(self.epoch, config.epochs, "starting")
            self._writer = BackgroundWriter(self.background_writes and self.ctx.is_main)
            try:
                while self.epoch < config.epochs:
                    self._run_epoch(self.epoch + 1, progress)
            except BaseException:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    self._writer.close()
                raise
            self._writer.close()  # every file written (or its failure raised) before fit returns
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
            train_seconds=train_seconds,
        )
        self.history.append(row)
        improved = math.isfinite(score) and score > self.best_dice
        if improved:
            self.best_dice = score
            self.best_epoch = epoch
        if self.ctx.is_main:
            self._write_results(improved, plot=config.plot and math.isfinite(score))
        speed = samples / max(train_seconds, 1e-9)
        message, short = epoch_messages(row, self.best_dice, speed)
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
            runtime=self.runtime,
        )
