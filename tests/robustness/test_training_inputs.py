"""Training inputs of the second hostile corpus (issue 23, findings 11 and 12)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from robust_helpers import assert_clean_error, invoke, run_cli

TRAIN = ["--n-filters", "2", "--epochs", "1", "--device", "cpu", "--fold", "0"]


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_split_file_that_is_not_a_regular_file_is_refused(
    kind: str, preprocessed: Path, tmp_path: Path
) -> None:
    """A FIFO hung; /dev/zero read until the memory ran out (24 GB)."""
    if kind == "fifo":
        split = tmp_path / "split.json"
        os.mkfifo(split)
    else:
        split = Path("/dev/zero")
    code, output = run_cli(
        ["train", preprocessed, tmp_path / "runs", *TRAIN, "--split", "file", "--split-file", split],
        timeout=300,
    )
    assert_clean_error(code, output, "error:", str(split), "split file")


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_a_nan_weight_decay_is_a_config_error(value: str, preprocessed: Path, tmp_path: Path) -> None:
    """``weight_decay: .nan`` in a YAML config gave a traceback from torch.optim.Adam."""
    config = tmp_path / "train.yaml"
    config.write_text(f"weight_decay: {value}\n")
    code, output = invoke(["train", preprocessed, tmp_path / "runs", *TRAIN, "--config", config])
    assert_clean_error(code, output, "error:", "weight_decay", "finite")
