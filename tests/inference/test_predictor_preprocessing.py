"""Which preprocessing a checkpoint predicts with: the authors' for original-format files by default."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import attrs
import pytest
import torch
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.config import to_dict
from hecktorseg.errors import ConfigError
from hecktorseg.inference import Predictor, apply_preprocessing_choice
from hecktorseg.io import Case
from hecktorseg.models import SENormUNet, build_model, save_checkpoint
from hecktorseg.preprocessing import PreprocessConfig


@pytest.fixture
def original_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "original.pth"
    torch.save({"module." + k: v for k, v in SENormUNet(n_filters=4).state_dict().items()}, path)
    return path


def test_original_checkpoint_defaults_to_the_authors_preprocessing(original_file: Path) -> None:
    auto = Predictor.from_checkpoints(original_file, device="cpu")
    assert auto.preprocess == PreprocessConfig.paper()
    assert auto.preprocess.legacy and auto.preprocess.ct_fill == 0.0 and auto.preprocess.pet_stats == "all"
    assert auto.preprocessing_name == "original" and "preprocessing=original" in repr(auto)
    explicit = Predictor.from_checkpoints(original_file, device="cpu", preprocessing="original")
    assert explicit.preprocess == PreprocessConfig.paper()
    ours = Predictor.from_checkpoints(original_file, device="cpu", preprocessing="hecktorseg")
    assert ours.preprocess == PreprocessConfig()
    assert ours.preprocessing_name == "hecktorseg"


def test_our_checkpoint_keeps_its_preprocessing_unless_told(tmp_path: Path, toys: SimpleNamespace) -> None:
    path = tmp_path / "ours.pt"
    save_checkpoint(
        path, build_model("senorm_unet", n_filters=4), metadata={"preprocess": to_dict(toys.SMALL_CONFIG)}
    )
    assert Predictor.from_checkpoints(path, device="cpu").preprocess == toys.SMALL_CONFIG
    original = Predictor.from_checkpoints(path, device="cpu", preprocessing="original").preprocess
    assert original == attrs.evolve(toys.SMALL_CONFIG, legacy=True, ct_fill=0.0, pet_stats="all")
    assert original.size == toys.SMALL_CONFIG.size  # the grid stays the checkpoint's


def test_unknown_choice_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown preprocessing"):
        apply_preprocessing_choice(PreprocessConfig(), "paper", original_checkpoint=True)  # type: ignore[arg-type]


def test_cli_says_which_preprocessing_was_used(
    dataset_2021: tuple[Path, Path, list[Case]], toys: SimpleNamespace, tmp_path: Path
) -> None:
    root, table, _ = dataset_2021
    ckpt = tmp_path / "model.pt"
    save_checkpoint(
        ckpt, build_model("senorm_unet", n_filters=4), metadata={"preprocess": to_dict(toys.SMALL_CONFIG)}
    )
    runner = CliRunner()
    base = ["predict", str(root), "--model", str(ckpt), "--bbox", str(table), "--precision", "fp32"]
    base += ["--num-parts", "3", "--part-id", "0"]
    result = runner.invoke(app, [*base[:2], str(tmp_path / "a"), *base[2:]])
    assert result.exit_code == 0, result.output
    assert "preprocessing: hecktorseg" in result.output
    result = runner.invoke(app, [*base[:2], str(tmp_path / "b"), *base[2:], "--preprocessing", "original"])
    assert result.exit_code == 0, result.output
    assert "preprocessing: original" in result.output
    result = runner.invoke(app, [*base[:2], str(tmp_path / "c"), *base[2:], "--preprocessing", "nope"])
    assert result.exit_code == 1 and "--preprocessing" in result.output


def test_cli_model_glob_pattern_is_an_ensemble(
    dataset_2021: tuple[Path, Path, list[Case]], toys: SimpleNamespace, tmp_path: Path
) -> None:
    for k in range(2):
        torch.manual_seed(k)
        save_checkpoint(
            tmp_path / "runs" / f"fold_{k}" / "best.pt",
            build_model("senorm_unet", n_filters=4),
            metadata={"preprocess": to_dict(toys.SMALL_CONFIG)},
        )
    root, table, _ = dataset_2021
    runner = CliRunner()
    args = ["predict", str(root), str(tmp_path / "pred"), "--bbox", str(table), "--precision", "fp32"]
    args += ["--num-parts", "3", "--part-id", "0"]
    result = runner.invoke(app, [*args, "--model", str(tmp_path / "runs" / "fold_*" / "best.pt")])
    assert result.exit_code == 0, result.output
    assert "2 models (ensemble)" in result.output
    result = runner.invoke(app, [*args, "--model", str(tmp_path / "nothing_*" / "best.pt")])
    assert result.exit_code == 1 and "no file matches" in result.output
