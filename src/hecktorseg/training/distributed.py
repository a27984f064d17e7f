"""torchrun / DistributedDataParallel support, initialised only when the environment asks for it.

``torchrun --nproc_per_node N -m hecktorseg train ...`` (or ``hecktorseg`` as the
script) sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`init_distributed`
then joins the process group (``nccl`` on CUDA, ``gloo`` on CPU), and every process
trains on its shard of each epoch (:class:`torch.utils.data.DistributedSampler`)
with gradients averaged by DDP. Only rank 0 writes files.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import attrs
import torch
import torch.distributed as dist

__all__ = [
    "DistContext",
    "all_reduce_sum",
    "barrier",
    "broadcast_text",
    "cleanup_distributed",
    "init_distributed",
    "is_main_process",
    "world_from_env",
]

logger = logging.getLogger(__name__)


@attrs.frozen
class DistContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes
    ----------
    rank, world_size, local_rank
        From the torchrun environment (0, 1, 0 without it).
    initialized_here
        Whether :func:`init_distributed` created the process group (and so
        :func:`cleanup_distributed` should destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and logs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1


def world_from_env() -> DistContext:
    """Rank, world size and local rank from ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` (defaults 0, 1, 0)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    return DistContext(rank=rank, world_size=world, local_rank=local)


def is_main_process() -> bool:
    """Whether this process is rank 0 (always true outside torchrun): the one that writes and reports."""
    return world_from_env().is_main


def init_distributed(device_type: str) -> DistContext:
    """Join the torchrun process group if ``WORLD_SIZE > 1`` (else return a single-process context).

    Parameters
    ----------
    device_type
        ``"cuda"`` (backend ``nccl``, one GPU per local rank) or ``"cpu"`` (``gloo``).
    """
    ctx = world_from_env()
    if not ctx.distributed:
        return ctx
    if dist.is_available() and dist.is_initialized():
        return attrs.evolve(ctx, rank=dist.get_rank(), world_size=dist.get_world_size())
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend)
    logger.info("joined process group: rank %d of %d (%s)", ctx.rank, ctx.world_size, backend)
    return attrs.evolve(ctx, initialized_here=True)


def cleanup_distributed(ctx: DistContext) -> None:
    """Destroy the process group if :func:`init_distributed` created it."""
    if ctx.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op in a single process)."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: list[float], ctx: DistContext, device: torch.device | str = "cpu") -> list[float]:
    """Sum ``values`` over all processes (returned unchanged in a single process)."""
    if not (ctx.distributed and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    out: list[Any] = tensor.cpu().tolist()
    return [float(v) for v in out]


def broadcast_text(text: str | None, ctx: DistContext) -> str | None:
    """Rank 0's ``text`` on every process (``None`` included); unchanged in a single process.

    Sent as bytes in tensors (no pickling), so it works with ``gloo`` and ``nccl``.
    Every process must call it; it returns once rank 0 has sent.
    """
    if not (ctx.distributed and dist.is_initialized()):
        return text
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    data = text.encode("utf-8") if (ctx.is_main and text is not None) else b""
    length = torch.tensor([len(data) if (ctx.is_main and text is not None) else -1], dtype=torch.int64)
    length = length.to(device)
    dist.broadcast(length, src=0)
    n = int(length.item())
    if n < 0:
        return None
    if ctx.is_main:
        buffer = torch.tensor(list(data), dtype=torch.uint8, device=device)
    else:
        buffer = torch.zeros(n, dtype=torch.uint8, device=device)
    if n:
        dist.broadcast(buffer, src=0)
    return bytes(buffer.cpu().tolist()).decode("utf-8")
