"""Minor findings of issue 23's second corpus (17): duplicate YAML keys, export over its own input."""

from __future__ import annotations

from pathlib import Path

from robust_helpers import assert_clean_error, invoke


def test_a_duplicate_yaml_key_is_an_error(preprocessed: Path, tmp_path: Path) -> None:
    """A key given twice used to take the last value silently."""
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 1\nlr: 0.001\nepochs: 300\n")
    code, output = invoke(["train", preprocessed, tmp_path / "runs", "--config", config, "--device", "cpu"])
    assert_clean_error(code, output, "error:", str(config), "duplicate key 'epochs'")


def test_export_refuses_to_overwrite_its_own_input(checkpoint: Path, tmp_path: Path) -> None:
    """``export CKPT CKPT --force`` overwrote the checkpoint it read."""
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(checkpoint.read_bytes())
    before = ckpt.read_bytes()
    code, output = invoke(["export", ckpt, ckpt, "--force"])
    assert_clean_error(code, output, "error:", "the output is the input checkpoint")
    assert ckpt.read_bytes() == before
