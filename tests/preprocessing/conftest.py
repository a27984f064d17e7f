"""Fixtures of the preprocessing tests (helpers live in ``pre_phantoms.py``)."""

from __future__ import annotations

import pytest

from hecktorseg.preprocessing import PreprocessConfig


@pytest.fixture
def small_config() -> PreprocessConfig:
    """A 2 mm, 24³ reference grid (48 mm box)."""
    return PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(24, 24, 24))
