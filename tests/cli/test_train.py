"""``hecktorseg train`` through Typer's CliRunner: smoke run, resume, and one-line errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from hecktorseg.cli import app

runner = CliRunner()
QUICK = [
    "--n-filters", "4", "--epochs", "1", "--split", "random", "--n-folds", "4", "--num-workers", "0",
    "--device", "cpu", "--max-train-batches-per-epoch", "1", "--max-val-batches", "1", "--no-plot",
    "--rotation-p", "0", "--mirror-p", "0",
]  # fmt: skip


def test_train_resume_and_refusal(preprocessed_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = runner.invoke(app, ["train", str(preprocessed_dir), str(out), *QUICK, "--fold", "2"])
    assert result.exit_code == 0, result.output
    fold = out / "fold_2"
    assert (fold / "best.pt").is_file() and (fold / "metrics.csv").is_file()
    assert "best validation Dice" in result.output
    # results exist: refuse without --resume / --force
    again = runner.invoke(app, ["train", str(preprocessed_dir), str(out), *QUICK, "--fold", "2"])
    assert again.exit_code == 1
    assert "--resume" in again.output and "Traceback" not in again.output
    # --resume with more epochs continues where it stopped
    more = runner.invoke(
        app, ["train", str(preprocessed_dir), str(out), *QUICK, "--fold", "2", "--epochs", "2", "--resume"]
    )
    assert more.exit_code == 0, more.output
    assert len((fold / "metrics.csv").read_text().strip().splitlines()) == 3


def test_yaml_config_and_filters_alias(preprocessed_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text("train:\n  n_filters: 8\n  split: random\n  n_folds: 4\n  epochs: 1\n")
    out = tmp_path / "runs"
    args = ["train", str(preprocessed_dir), str(out), "--config", str(config), *QUICK[2:], "--filters", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = (out / "fold_0" / "config.yaml").read_text()
    assert "n_filters: 4" in saved


def test_bad_configuration_is_one_line_naming_the_field(preprocessed_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 2\nlearning_rate: 0.1\n")
    result = runner.invoke(app, ["train", str(preprocessed_dir), str(tmp_path / "o"), "--config", str(bad)])
    assert result.exit_code == 1
    assert "learning_rate" in result.output and "Traceback" not in result.output

    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("lr: fast\n")
    result = runner.invoke(app, ["train", str(preprocessed_dir), str(tmp_path / "o"), "--config", str(wrong)])
    assert result.exit_code == 1 and "lr" in result.output

    result = runner.invoke(
        app, ["train", str(preprocessed_dir), str(tmp_path / "o"), "--rotation-axes", "0,5"]
    )
    assert result.exit_code == 1 and "rotation_axes" in result.output

    result = runner.invoke(app, ["train", str(tmp_path / "missing"), str(tmp_path / "o")])
    assert result.exit_code == 1 and "missing" in result.output and "not found" in result.output

    result = runner.invoke(app, ["train", str(preprocessed_dir), str(tmp_path / "o"), "--fold", "7"])
    assert result.exit_code == 1 and "fold" in result.output


def test_help_documents_torchrun() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--epochs",
        "--n-filters",
        "--batch-size",
        "--seed",
        "--device",
        "--amp",
        "--resume",
        "--all-folds",
    ):
        assert flag in result.output, flag
    assert "torchrun" in result.output


def test_paper_preset_on_node_data_says_it_trains_three_outputs(tmp_path: Path) -> None:
    """``--preset paper`` on GTVn data: a loud warning, 3 outputs, and the score's parts at the end."""
    from hecktorseg.data import SyntheticConfig, write_synthetic_dataset
    from hecktorseg.models import load_checkpoint
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

    cases = write_synthetic_dataset(
        tmp_path / "raw", n_cases=4, edition="2022", seed=3, config=SyntheticConfig.tiny()
    )
    pre = tmp_path / "pre"
    preprocess_dataset(cases, pre, PreprocessConfig(spacing=(9.0,) * 3, size=(16,) * 3))
    out = tmp_path / "runs"
    args = ["train", str(pre), str(out), "--preset", "paper", *QUICK, "--n-folds", "2", "--fold", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "labels lymph nodes" in flat and "3 outputs" in flat and "--n-classes 1" in flat
    assert "best validation score" in flat and "GTVN DSCagg" in flat and "GTVP Dice" in flat
    model = load_checkpoint(out / "fold_0" / "best.pt")
    assert model.metadata["n_classes"] == 3
    assert model.metadata["train"]["loss"] == "dice_focal"  # the paper's loss, as the preset says
