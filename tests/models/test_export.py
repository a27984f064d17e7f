"""Export to TorchScript and ONNX, checked against eager PyTorch."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.errors import ConfigError
from hecktorseg.models import SENormUNet, export_model, save_checkpoint, verify_export


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "model.pt", SENormUNet(n_filters=4))


def test_torchscript_export_matches_eager(checkpoint: Path, tmp_path: Path) -> None:
    out = export_model(checkpoint, tmp_path / "model_ts.pt", shape=(1, 2, 16, 16, 16), verify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.load(str(out))
    model = SENormUNet(n_filters=4)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    x = torch.randn(1, 2, 16, 16, 32)
    with torch.no_grad():
        # The traced SE-norm is written with instance_norm (a faster graph), the eager one with
        # var_mean: the same maths, equal up to float32 rounding.
        torch.testing.assert_close(scripted(x), model.eval()(x), rtol=1e-4, atol=1e-4)


def test_onnx_export_matches_eager(checkpoint: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    out = export_model(checkpoint, tmp_path / "model.onnx", shape=(1, 2, 16, 16, 16), verify=False)
    model = SENormUNet(n_filters=4)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    method, diff = verify_export(out, model, torch.randn(1, 2, 16, 16, 16))
    assert diff < 1e-4
    assert method in ("onnxruntime", "onnx.reference")


def test_export_errors(checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown export format"):
        export_model(checkpoint, tmp_path / "model.h5")
    with pytest.raises(Exception, match="multiples of 16"):
        export_model(checkpoint, tmp_path / "m.pt", shape=(1, 2, 20, 16, 16))
    with pytest.raises(ConfigError, match="channels"):
        export_model(checkpoint, tmp_path / "m.pt", shape=(1, 3, 16, 16, 16))


def test_cli_export(checkpoint: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli.pt"
    result = runner.invoke(app, ["export", str(checkpoint), str(out), "--shape", "1,2,16,16,16"])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    again = runner.invoke(app, ["export", str(checkpoint), str(out), "--shape", "1,2,16,16,16"])
    assert again.exit_code == 1
    assert "--force" in again.output
    bad = runner.invoke(app, ["export", str(tmp_path / "missing.pt"), str(tmp_path / "x.pt")])
    assert bad.exit_code == 1
    assert "not found" in bad.output
