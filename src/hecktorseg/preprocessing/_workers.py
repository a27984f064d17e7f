"""Worker processes of a preprocessing run: a spawned pool whose workers use one thread each and
die with their parent (``prctl(PR_SET_PDEATHSIG)`` on Linux, a watching thread everywhere), so that a
``kill -9`` of the main process leaves no orphans behind."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

import SimpleITK as sitk

from hecktorseg.io._reading import set_io_threads

__all__: list[str] = []


def _init_worker(parent: int | None = None) -> None:
    """Worker processes do the parallelism: one SimpleITK thread and sequential reads in each.

    A worker also dies with its parent (see :func:`_tie_to_parent`), so that a
    ``kill -9`` of the main process leaves no orphans behind.
    """
    if parent is not None:
        _tie_to_parent(parent)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    set_io_threads(1)


_PR_SET_PDEATHSIG = 1


def _tie_to_parent(parent: int) -> None:
    """End this process when process ``parent`` ends, however it ends.

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread also checks once a second whether the parent is
    still there (its id as parent process).
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above: go now
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="hecktorseg-parent-watch", daemon=True).start()


def _worker_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes that exit when this process dies (even by SIGKILL)."""
    ctx = multiprocessing.get_context("spawn")  # safe with threads (torch, ITK) in the parent
    return cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),)
    )
