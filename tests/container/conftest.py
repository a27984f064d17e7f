"""Fixtures of the container tests: a tiny 0/1/2 dataset, a 3-class checkpoint, a Grand Challenge input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hecktorseg.config import to_dict
from hecktorseg.data.synthetic import SyntheticConfig, write_synthetic_dataset
from hecktorseg.io import Case
from hecktorseg.models import build_model, save_checkpoint
from hecktorseg.preprocessing import PreprocessConfig

SMALL = PreprocessConfig(spacing=(4.5, 4.5, 4.5), size=(32, 32, 32))


@pytest.fixture(scope="session")
def nodes_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Case]]:
    """Two tiny 2022-layout phantoms (labels 0/1/2, no box table)."""
    root = tmp_path_factory.mktemp("gc-data") / "raw"
    cases = write_synthetic_dataset(root, n_cases=2, edition="2022", seed=5, config=SyntheticConfig.tiny())
    return root, cases


def _checkpoint(path: Path, n_classes: int, seed: int) -> Path:
    torch.manual_seed(seed)
    model = build_model("senorm_unet", n_filters=4, n_classes=n_classes)
    with torch.no_grad():  # favour the foreground classes a little, so that 1 and 2 both appear
        last = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)][-1]
        if last.bias is not None and n_classes == 3:
            last.bias.copy_(torch.tensor([0.0, 0.05, 0.05]))
    save_checkpoint(path, model, metadata={"preprocess": to_dict(SMALL)})
    return path


@pytest.fixture(scope="session")
def three_class_ckpts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two random 3-output SE-norm U-Nets (f = 4) on the 32³ / 4.5 mm grid."""
    folder = tmp_path_factory.mktemp("gc-models")
    return [_checkpoint(folder / f"m{k}.pt", 3, seed=k) for k in range(2)]
