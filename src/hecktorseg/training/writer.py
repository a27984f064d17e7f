"""Writing checkpoints, metrics and plots off the training loop's critical path.

:class:`BackgroundWriter` runs the jobs it is given, in order, on one thread, while the next
epoch computes. Each job works on a snapshot taken when it was submitted (the caller copies
what training goes on changing), every file is written atomically as before, and
:meth:`BackgroundWriter.close` waits for all of them and re-raises the first failure, so nothing
is lost or silently dropped. Disabled, it runs each job at once (the CPU default: there the
training thread would only wait for the disk instead).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["BackgroundWriter"]

logger = logging.getLogger(__name__)

_STOP = object()


class BackgroundWriter:
    """Run file-writing jobs in order on one background thread (or at once, when not ``enabled``).

    Parameters
    ----------
    enabled
        Use a background thread; ``False`` runs every job in the caller's thread.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if enabled:
            self._thread = threading.Thread(target=self._run, name="hecktorseg-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            fn, args, kwargs = job
            if self._error is not None:
                continue  # after a failure, later writes could overwrite good files with stale ones
            try:
                fn(*args, **kwargs)
            except BaseException as exc:  # re-raised in the training thread by submit / close
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` after the jobs before it; a failure of an earlier job is raised here."""
        if self._thread is None:
            fn(*args, **kwargs)
            return
        self._raise()
        self._queue.put((fn, args, kwargs))

    def close(self) -> None:
        """Wait for every job and stop the thread; re-raise the first failure of a job."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None
        self._raise()
