"""``hecktorseg preprocess``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``preprocess`` command to ``app``."""
