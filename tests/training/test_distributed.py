"""DistributedDataParallel on 2 CPU processes (gloo): gradients are averaged across ranks, and a rank
that reaches train() after rank 0 wrote split.json still trains (rank 0 decides, the others follow)."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from hecktorseg.training import train_step


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    # no batch statistics: the step on the combined batch equals the DDP step exactly
    return nn.Sequential(nn.Conv3d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv3d(4, 1, 1))


def _batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(4, 2, 6, 6, 6, generator=g),
        "label": (torch.rand(4, 1, 6, 6, 6, generator=g) > 0.8).float(),
    }


def _loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy_with_logits(logits, label)  # mean over batch and voxels


def _worker(rank: int, world: int, port: int, out: str, data_dir: str) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            # like torchrun: the store is already served (by the test process), every rank is a client
            "TORCHELASTIC_USE_AGENT_STORE": "True",
        }
    )
    torch.set_num_threads(1)
    from hecktorseg.training import TrainConfig, cleanup_distributed, init_distributed, train

    ctx = init_distributed("cpu")
    assert ctx.distributed and ctx.rank == rank
    model = nn.parallel.DistributedDataParallel(_tiny_model())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = _batch()
    half = {k: v[rank * 2 : rank * 2 + 2] for k, v in batch.items()}
    train_step(model, half, _loss, optimizer)
    torch.save(model.module.state_dict(), Path(out) / f"rank{rank}.pt")
    # the whole loop under torchrun-like environment: sharded data, rank-0 writes.
    # Rank 1 reaches train() only once rank 0 has written split.json (as a rank that starts late
    # would): it must not take that file for earlier results. The order of events is fixed by the
    # file, not by timing; the wait ends after a minute should rank 0 ever wait for rank 1 first.
    if rank == 1:
        split = Path(out) / "runs" / "fold_0" / "split.json"
        deadline = time.monotonic() + 60
        while not split.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    config = TrainConfig(
        n_filters=4,
        epochs=1,
        split="random",
        n_folds=4,
        num_workers=0,
        device="cpu",
        rotation_p=0,
        mirror_p=0,
        max_train_batches_per_epoch=1,
        plot=False,
    )
    result = train(data_dir, Path(out) / "runs", config, fold=0)
    (Path(out) / f"dice{rank}.txt").write_text(repr(result.best_dice))
    cleanup_distributed(ctx)


def test_ddp_averages_gradients_across_two_cpu_processes(
    tmp_path: Path, preprocessed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The spawned ranks unpickle `_worker` by importing this module as `tests.training...`: the
    # repository root must be on their path, which they inherit from this process (a bare
    # `pytest` does not put the working folder there, `python -m pytest` does).
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    # The rendezvous store is bound here, on a port the OS picks, before the ranks start (as the
    # torchrun agent does): no port is probed and released, so none can be taken in between.
    store = torch.distributed.TCPStore(
        "127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=120)
    )
    mp.spawn(_worker, args=(2, store.port, str(tmp_path), str(preprocessed_dir)), nprocs=2, join=True)
    del store
    w0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    reference = _tiny_model()
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    train_step(reference, _batch(), _loss, optimizer)
    initial = _tiny_model().state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(w0[key], w1[key]), key
        torch.testing.assert_close(w0[key], value, rtol=1e-5, atol=1e-6)
        assert not torch.equal(value, initial[key])  # the step moved the weights
    # both ranks computed the same (all-reduced) validation Dice; only rank 0 wrote files
    assert (tmp_path / "dice0.txt").read_text() == (tmp_path / "dice1.txt").read_text()
    fold = tmp_path / "runs" / "fold_0"
    assert (fold / "last.pt").is_file() and (fold / "metrics.csv").is_file()
    assert not list(fold.glob(".*tmp*"))


@pytest.mark.parametrize("env", [{}, {"WORLD_SIZE": "1", "RANK": "0"}])
def test_single_process_does_not_init_a_group(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    from hecktorseg.training import init_distributed

    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ctx = init_distributed("cpu")
    assert not ctx.distributed and ctx.is_main and not ctx.initialized_here
    assert not torch.distributed.is_initialized()
