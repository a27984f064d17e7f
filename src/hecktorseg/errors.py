"""One exception hierarchy for everything hecktorseg raises on purpose.

Every message says *what* is wrong, *where* (the file, row, field or patient)
and *how to fix it*. The command-line interface prints these in one line and
exits with a non-zero status instead of showing a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GeometryError",
    "HecktorsegError",
    "LayoutError",
    "OutputError",
]


class HecktorsegError(Exception):
    """Base class of all errors raised deliberately by hecktorseg.

    Parameters
    ----------
    message
        What went wrong.
    path
        The file or folder concerned, if any; it is prefixed to the message.
    hint
        How to fix it; appended to the message.
    """

    def __init__(
        self, message: str, *, path: str | os.PathLike[str] | None = None, hint: str | None = None
    ) -> None:
        self.message = message
        self.path = None if path is None else Path(path)
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.path is not None:
            text = f"{self.path}: {text}"
        if self.hint:
            text = f"{text} — {self.hint}"
        return text


class DataError(HecktorsegError):
    """An input image, mask or table is missing, unreadable or invalid."""


class LayoutError(HecktorsegError):
    """A dataset folder does not match any (or the requested) dataset layout."""


class GeometryError(HecktorsegError):
    """Images do not overlap, a box lies outside an image, grids disagree, …"""


class ConfigError(HecktorsegError):
    """A configuration field is unknown, has the wrong type or an invalid value."""


class CheckpointError(HecktorsegError):
    """A checkpoint file cannot be read or does not hold what was expected."""


class OutputError(HecktorsegError):
    """An output file or folder cannot be written (not a folder, read-only, in use by another run, …)."""
