"""Fixtures of the training tests: a tiny synthetic dataset preprocessed to 32³ at 4.5 mm."""

from __future__ import annotations

from pathlib import Path

import pytest

N_CASES = 8


def make_preprocessed(root: Path, n_cases: int = N_CASES, seed: int = 0) -> Path:
    """Write ``n_cases`` synthetic phantoms and preprocess them to 32³ voxels of 4.5 mm."""
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

    raw = root / "raw"
    out = root / "pre"
    write_synthetic_dataset(raw, n_cases=n_cases, seed=seed)
    report = preprocess_dataset(raw, out, PreprocessConfig(spacing=(4.5, 4.5, 4.5), size=(32, 32, 32)))
    assert not report.failed, report.failed
    return out


@pytest.fixture(scope="session")
def preprocessed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preprocessed dataset of 8 synthetic cases (two per centre: CHGJ, CHMR, CHUM, CHUS)."""
    return make_preprocessed(tmp_path_factory.mktemp("training-data"))
