"""Fixtures of the robustness corpus (session scope: built once, never modified by a test).

See ``robust_helpers.py`` for what each corpus case must show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from robust_helpers import N_GOOD, write_tiny_dataset


@pytest.fixture(scope="session")
def small_config():  # type: ignore[no-untyped-def]
    """The preprocessing grid of the corpus: 16³ voxels of 9 mm (the 144 mm box)."""
    from hecktorseg.preprocessing import PreprocessConfig

    return PreprocessConfig(spacing=(9.0, 9.0, 9.0), size=(16, 16, 16))


@pytest.fixture(scope="session")
def raw_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny phantoms in the 2020 layout (do not modify: copy with :func:`copy_dataset`)."""
    root = tmp_path_factory.mktemp("robust-raw") / "raw"
    write_tiny_dataset(root, N_GOOD)
    return root


@pytest.fixture(scope="session")
def preprocessed(tmp_path_factory: pytest.TempPathFactory, raw_dataset: Path, small_config) -> Path:  # type: ignore[no-untyped-def]
    """``raw_dataset`` preprocessed to 16³ (a clean reference run; do not modify)."""
    from hecktorseg.preprocessing import preprocess_dataset

    out = tmp_path_factory.mktemp("robust-pre") / "pre"
    report = preprocess_dataset(raw_dataset, out, small_config)
    assert report.ok and len(report.done) == N_GOOD, report.failed
    return out


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, small_config) -> Path:  # type: ignore[no-untyped-def]
    """An untrained 2-filter SE-norm U-Net that predicts on the 16³ grid (its masks are arbitrary)."""
    import torch

    from hecktorseg.config import to_dict
    from hecktorseg.models import build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("robust-ckpt") / "tiny.pt"
    save_checkpoint(
        path, build_model("senorm_unet", n_filters=2), metadata={"preprocess": to_dict(small_config)}
    )
    return path
