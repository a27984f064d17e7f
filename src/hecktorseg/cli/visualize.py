"""``hecktorseg visualize``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``visualize`` command to ``app``."""
