"""``hecktorseg synth``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to ``app``."""
