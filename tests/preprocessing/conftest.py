"""Fixtures of the preprocessing tests (helpers live in ``pre_phantoms.py``)."""

from __future__ import annotations

import pytest

from hecktorseg.preprocessing import PreprocessConfig


@pytest.fixture
def small_config() -> PreprocessConfig:
    """A 2 mm, 32³ reference grid (64 mm box; sides must be multiples of 16)."""
    return PreprocessConfig(spacing=(2.0, 2.0, 2.0), size=(32, 32, 32))
