"""hecktorseg.training.writer: checkpoint and plot writes off the critical path, in order, nothing lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from hecktorseg.models import read_checkpoint_file
from hecktorseg.training import TrainConfig, read_metrics_csv, train
from hecktorseg.training import trainer as trainer_module
from hecktorseg.training.writer import BackgroundWriter


def test_jobs_run_in_order_on_another_thread() -> None:
    seen: list[tuple[int, str]] = []
    writer = BackgroundWriter(True)
    for i in range(20):
        writer.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
    writer.close()
    assert [i for i, _ in seen] == list(range(20))
    assert {name for _, name in seen} == {"hecktorseg-writer"}


def test_a_failed_job_is_raised_and_later_jobs_are_not_run() -> None:
    done: list[int] = []
    writer = BackgroundWriter(True)

    def fail() -> None:
        raise OSError("disk full")

    writer.submit(fail)
    writer.submit(done.append, 1)  # must not overwrite good files after a failure
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert done == []


def test_disabled_runs_each_job_at_once() -> None:
    done: list[str] = []
    writer = BackgroundWriter(False)
    writer.submit(lambda: done.append(threading.current_thread().name))
    assert done == [threading.current_thread().name]
    writer.close()


def test_background_writes_give_the_same_files(
    preprocessed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trainer's background path (the CUDA default) writes what the synchronous path writes."""
    config = TrainConfig(
        n_filters=4,
        split="random",
        n_folds=4,
        num_workers=0,
        device="cpu",
        epochs=3,
        max_train_batches_per_epoch=2,
        max_val_batches=1,
        deterministic=True,
        rotation_p=0.0,
    )
    plain = train(preprocessed_dir, tmp_path / "plain", config, fold=0)
    monkeypatch.setattr(trainer_module, "BackgroundWriter", lambda enabled: BackgroundWriter(True))
    background = train(preprocessed_dir, tmp_path / "background", config, fold=0)
    for name in ("last.pt", "best.pt"):
        a = read_checkpoint_file(plain.fold_dir / name)
        b = read_checkpoint_file(background.fold_dir / name)
        assert (
            a["epoch" if name == "last.pt" else "metadata"] == b["epoch" if name == "last.pt" else "metadata"]
        )
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert (
        read_metrics_csv(plain.metrics_csv)[-1].train_loss
        == read_metrics_csv(background.metrics_csv)[-1].train_loss
    )
    assert (background.fold_dir / "learning_curves.png").stat().st_size > 0
