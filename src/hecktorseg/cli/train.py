"""``hecktorseg train``: cross-validated training on a preprocessed dataset.

Settings come from the defaults (hecktorseg's recipe) or ``--preset paper`` (the
paper's, :meth:`TrainConfig.paper`), then ``--config YAML`` (top level or under a
``train:`` key; see ``examples/train_paper.yaml``), then the flags. The resolved
configuration is written to ``OUT/fold_K/config.yaml``.

The paper's eight-model ensemble::

    hecktorseg preprocess RAW DATA --preset paper
    hecktorseg train DATA runs --preset paper --all-folds
    hecktorseg predict TEST PRED --model 'runs/fold_*/best.pt'   # quoted: hecktorseg expands it

Several GPUs
------------
One model on several GPUs (DistributedDataParallel; ``--batch-size`` is per GPU)::

    torchrun --nproc_per_node 2 -m hecktorseg train DATA OUT --fold 0

Several nodes (run on every node)::

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d \\
        --rdzv_endpoint HOST:29500 -m hecktorseg train DATA OUT --fold 0

One fold per GPU, in parallel::

    for k in 0 1 2 3; do CUDA_VISIBLE_DEVICES=$k hecktorseg train DATA OUT --fold $k & done; wait

Stop any time and continue later with ``--resume`` (from ``OUT/fold_K/last.pt``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from hecktorseg.cli._common import console, err_console, handle_errors, progress_bar, with_config_options
from hecktorseg.training.config import TrainConfig

if TYPE_CHECKING:
    from hecktorseg.training import TrainResult

HELP = (
    "Train the SE-norm U-Net on a preprocessed dataset (one cross-validation fold, or all).\n\n"
    "DATA_DIR is the output of 'hecktorseg preprocess' (with manifest.json). Results go to "
    "OUT_DIR/fold_K: best.pt, last.pt, metrics.csv, learning_curves.png, config.yaml, split.json. "
    "Settings: defaults (hecktorseg's recipe) or --preset paper (the paper's: fp32, its augmentation "
    "and its eight folds by patient id) < --config YAML < flags; the resolved settings go to "
    "OUT_DIR/fold_K/config.yaml. Existing results are kept "
    "unless --resume (continue from last.pt) or --force (start over).\n\n"
    "The paper's 8-model ensemble: hecktorseg train DATA runs --preset paper --all-folds, then "
    "hecktorseg predict TEST PRED --model 'runs/fold_*/best.pt' (quoted: hecktorseg expands the pattern).\n\n"
    "Several GPUs: torchrun --nproc_per_node N -m hecktorseg train DATA OUT --fold K "
    "(--batch-size is per GPU; add --nnodes and --rdzv-endpoint for several nodes).\n\n"
    "One fold per GPU: CUDA_VISIBLE_DEVICES=K hecktorseg train DATA OUT --fold K & (for each K)."
)


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""

    @app.command("train", help=HELP)
    @handle_errors
    @with_config_options(TrainConfig)
    def train_command(
        data_dir: Path = typer.Argument(
            ..., help="Preprocessed dataset (output of 'hecktorseg preprocess')."
        ),
        out_dir: Path = typer.Argument(..., help="Output folder; fold K writes OUT_DIR/fold_K."),
        config_file: Optional[Path] = typer.Option(  # noqa: UP045 - Typer needs a runtime Optional
            None, "--config", help="YAML config (top level, or under a 'train:' key)."
        ),
        preset: Optional[str] = typer.Option(  # noqa: UP045
            None,
            "--preset",
            help="Base settings: 'paper' = the published recipe (fp32, the paper's augmentation, its "
            "eight folds: --fold 0-3 centre folds s0-s3, 4-7 random folds ns0-ns3); 'default' = ours. "
            "--config and flags override it.",
        ),
        fold: Optional[int] = typer.Option(  # noqa: UP045
            None, "--fold", min=0, help="Fold to train, 0-based (default: the config's 'fold', 0)."
        ),
        all_folds: bool = typer.Option(
            False, "--all-folds", help="Train every fold of the split, one after another."
        ),
        filters: Optional[int] = typer.Option(  # noqa: UP045
            None, "--filters", min=1, help="Alias of --n-filters (filters at the first level)."
        ),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUT_DIR/fold_K/last.pt."),
        force: bool = typer.Option(
            False, "--force", help="Delete earlier results of the fold(s) and start over."
        ),
        *,
        overrides: dict[str, Any],
    ) -> None:
        from hecktorseg.config import resolve_config
        from hecktorseg.errors import ConfigError, DataError

        if resume and force:
            raise ConfigError("--resume and --force contradict each other", hint="give one of them")
        if fold is not None and all_folds:
            raise ConfigError("--fold and --all-folds contradict each other", hint="give one of them")
        if not data_dir.is_dir():
            raise DataError(
                "data directory not found",
                path=data_dir,
                hint="give the output folder of 'hecktorseg preprocess'",
            )
        changes = dict(overrides)
        if filters is not None:
            changes["n_filters"] = filters
        if fold is not None:
            changes["fold"] = fold
        config = resolve_config(
            TrainConfig,
            preset=preset,
            presets={"paper": TrainConfig.paper, "default": TrainConfig},
            yaml=config_file,
            section="train",
            overrides=changes,
        )

        from hecktorseg.training import folds_to_train, is_main_process, train_all_folds

        if preset == "paper":
            _warn_if_not_paper_preprocessed(data_dir)
            if config.n_classes is None:
                _warn_if_paper_recipe_meets_nodes(data_dir)
        main = is_main_process()

        def report(k: int, result: TrainResult) -> None:
            if main:
                console.print(
                    f"fold {k}: {result.best_summary()} → {result.best_checkpoint}",
                    highlight=False,
                    soft_wrap=True,
                )

        train_all_folds(
            data_dir,
            out_dir,
            config,
            folds=folds_to_train(data_dir, config, all_folds=all_folds),
            resume=resume,
            force=force,
            fold_progress=lambda k: progress_bar(f"fold {k}", disable=not main),
            on_result=report,
        )


def _warn_if_not_paper_preprocessed(data_dir: Path) -> None:
    """Warn when ``--preset paper`` trains on a dataset not preprocessed with ``--preset paper``."""
    from hecktorseg.errors import HecktorsegError
    from hecktorseg.preprocessing import PAPER_PREPROCESS, read_manifest

    try:
        config = read_manifest(data_dir).config
    except HecktorsegError:
        return  # train() reports a missing or bad manifest
    differ = [name for name, value in PAPER_PREPROCESS.items() if getattr(config, name) != value]
    if differ:
        err_console.print(
            f"[yellow]warning:[/] {data_dir} was not preprocessed as the paper ({', '.join(differ)} differ); "
            "use 'hecktorseg preprocess --preset paper' for the paper's recipe",
            highlight=False,
            soft_wrap=True,
        )


def _warn_if_paper_recipe_meets_nodes(data_dir: Path) -> None:
    """Say loudly that ``--preset paper`` on GTVn data trains 3 outputs (the paper had one, GTVt)."""
    from hecktorseg.errors import HecktorsegError
    from hecktorseg.training import dataset_label_values

    try:
        values = dataset_label_values(data_dir)
    except HecktorsegError:
        return  # train() reports a missing or bad manifest
    if 2 in values:
        err_console.print(
            f"[yellow]warning:[/] {data_dir} labels lymph nodes (GTVn, label 2): --preset paper trains its "
            "recipe with 3 outputs (background, GTVp, GTVn) from the data, where the paper had one (GTVt); "
            "add --n-classes 1 for the paper's binary model (GTVp only)",
            highlight=False,
            soft_wrap=True,
        )
