"""Starting and resuming a fold: its output folder, what may be overwritten, what must match.

:func:`prepare_fold_dir` creates ``OUT/fold_K`` and refuses to overwrite the results of an
earlier run (:data:`RESULT_FILES`) unless asked; :func:`check_resumed_split` and
:func:`check_resumed_config` refuse to continue a run whose cases or settings changed;
:func:`prepare_on_rank0` does all of it once under torchrun and tells every process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hecktorseg.config import to_dict
from hecktorseg.errors import ConfigError
from hecktorseg.io import ensure_output_dir
from hecktorseg.training.config import TrainConfig
from hecktorseg.training.distributed import DistContext, broadcast_text
from hecktorseg.training.splits import Split, save_split
from hecktorseg.typing import PathLike

__all__ = [
    "RESULT_FILES",
    "check_resumed_config",
    "check_resumed_split",
    "prepare_fold_dir",
    "prepare_on_rank0",
]

logger = logging.getLogger(__name__)

_TRAINED_FILES = ("last.pt", "best.pt", "metrics.csv", "learning_curves.png")
# Written once an epoch has finished: only these make a fold "results" that a new run must not
# overwrite. config.yaml and split.json alone are what a run that failed before training left.

RESULT_FILES = (*_TRAINED_FILES, "config.yaml", "split.json")
"""Files a training run writes into its fold folder."""

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
        "compile",
        "tf32",
        "cudnn_benchmark",
        "augment_device",
        "log_interval",
    }
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
        trained = [name for name in existing if name in _TRAINED_FILES]
        if trained and not force:
            raise ConfigError(
                f"results already exist ({', '.join(trained)})",
                path=path,
                hint="pass resume=True to continue training or force=True to start over",
            )
        for name in existing:
            (path / name).unlink()
        if force:
            logger.info("removed earlier results in %s (--force)", path)
        else:
            logger.info("replacing %s of a run that stopped before training (%s)", ", ".join(existing), path)
    ensure_output_dir(path)
    return path


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def check_resumed_config(saved: Mapping[str, Any], config: TrainConfig, path: Path) -> None:
    """Refuse to resume with settings that differ from those of the interrupted run.

    Parameters
    ----------
    saved
        The ``train`` metadata of the interrupted run's ``last.pt``.
    config
        The settings of the resumed run (fields of ``_RESUME_FREE`` may differ).
    path
        The checkpoint (named in the error).
    """
    current = to_dict(config)
    changed = sorted(
        k for k in current if k not in _RESUME_FREE and k in saved and _norm(saved[k]) != _norm(current[k])
    )
    if changed:
        raise ConfigError(
            f"cannot resume: field(s) {', '.join(changed)} differ from the interrupted run",
            path=path,
            hint="resume with the same configuration, or pass force=True to start over",
        )


def check_resumed_split(path: Path, split: Split, *, resume: bool) -> None:
    """Refuse to resume a fold whose cases changed since it started (``path``: its ``split.json``)."""
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
            hint="resume on the same dataset and split, or pass force=True to start over",
        )


def prepare_on_rank0(
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
            check_resumed_split(fold_dir / "split.json", split, resume=resume)
            save_split(split, fold_dir / "split.json", seed=config.seed)
        except Exception as exc:
            failure = exc
            message = str(exc) or type(exc).__name__
    message = broadcast_text(message, ctx)
    if failure is not None:
        raise failure
    if message is not None:
        raise ConfigError(f"rank 0 could not start this fold: {message}", path=fold_dir)
