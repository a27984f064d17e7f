"""Reproducibility of a training run: seeding, RNG state save/restore, deterministic algorithms.

:func:`seed_everything` seeds torch, Python and NumPy's global generator; :func:`rng_state` /
:func:`set_rng_state` capture and restore all of them (``last.pt`` holds the state, so a
resumed run continues exactly); :func:`deterministic_algorithms` switches torch to its
deterministic kernels for the duration of a run.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["deterministic_algorithms", "rng_state", "seed_everything", "set_rng_state"]


@contextlib.contextmanager
def deterministic_algorithms(
    deterministic: bool, device: torch.device, *, benchmark: bool = False
) -> Iterator[None]:
    """Use deterministic algorithms inside the block when ``deterministic`` (restored after).

    Without ``deterministic``, cuDNN benchmarking (timing the convolution algorithms at the
    first step of each shape) is ``benchmark`` on a CUDA ``device``; the setting in force
    before is restored after the block.
    """
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    benchmark_before = torch.backends.cudnn.benchmark
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = benchmark
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark_before
        if deterministic and not deterministic_before:
            torch.use_deterministic_algorithms(False)


def seed_everything(seed: int) -> None:
    """Seed torch (every device), Python's ``random`` and NumPy's global generator.

    Parameters
    ----------
    seed
        Any integer; NumPy receives it modulo 2**32.
    """
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - the legacy global RNG is what user code sees


def rng_state() -> dict[str, Any]:
    """Capture the state of every global generator :func:`seed_everything` seeds.

    Returns
    -------
    dict
        ``torch`` (a tensor), ``numpy`` and ``python`` (plain lists and numbers, which a
        checkpoint loaded with ``weights_only=True`` can hold), plus ``cuda`` when CUDA is in use.
    """
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


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generators from :func:`rng_state`'s output.

    Parameters
    ----------
    state
        What :func:`rng_state` returned; an entry that is missing or malformed leaves its
        generator as it is, and ``cuda`` is skipped on a machine without CUDA.
    """
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
