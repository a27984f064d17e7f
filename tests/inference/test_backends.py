"""Inference backends: agreement with torch fp32, the ``auto`` choice, missing backends, caches, batched TTA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from hecktorseg.errors import ConfigError
from hecktorseg.inference import Predictor, PredictorConfig, backends
from hecktorseg.inference.backends import (
    RuntimeChoice,
    VerifiedCombination,
    compile_model,
    select_runtime,
    verified_combinations,
)
from hecktorseg.models import build_model

CPU = torch.device("cpu")


def _tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("senorm_unet", n_filters=4).eval()


def _x(seed: int = 0, shape: tuple[int, ...] = (1, 2, 32, 32, 32)) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def _installed(backend: str) -> bool:
    return backends.backend_available(backend)


def _reference(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(model(x))


# -- agreement with torch fp32 on the same weights --------------------------------------------------

# (backend, precision, max |Δp| allowed, mean |Δp| allowed): fp32 backends differ by summation
# order only; bf16 rounds every convolution input (random weights: logits near 0, the worst case).
CASES = [
    ("torch", "fp32", 1e-6, 1e-7),
    ("torch", "bf16", 0.1, 0.01),
    ("openvino", "fp32", 2e-3, 1e-4),
    ("openvino", "bf16", 0.1, 0.01),
    ("onnxruntime", "fp32", 2e-3, 1e-4),
]


@pytest.mark.parametrize(("backend", "precision", "max_tol", "mean_tol"), CASES)
def test_backend_matches_torch_fp32(backend: str, precision: str, max_tol: float, mean_tol: float) -> None:
    if not _installed(backend):
        pytest.skip(f"{backend} is not installed")
    model = _tiny(1)
    x = _x(1, (1, 2, 32, 48, 16))  # not a cube: axes must not be swapped
    ref = _reference(model, x)
    run = compile_model(_tiny(1), RuntimeChoice(backend, precision, CPU), cache=False)  # type: ignore[arg-type]
    got = torch.sigmoid(run(x))
    assert got.shape == ref.shape and got.dtype == torch.float32
    diff = (got - ref).abs()
    assert float(diff.max()) <= max_tol
    assert float(diff.mean()) <= mean_tol


def test_openvino_fp32_on_one_thread_runs() -> None:
    """OpenVINO 2026.4 crashes compiling f32 on one thread: the backend must avoid that."""
    if not _installed("openvino"):
        pytest.skip("openvino is not installed")
    run = compile_model(_tiny(1), RuntimeChoice("openvino", "fp32", CPU), cache=False, num_threads=1)
    x = _x(5)
    torch.testing.assert_close(torch.sigmoid(run(x)), _reference(_tiny(1), x), atol=2e-3, rtol=0)


# -- the auto choice ------------------------------------------------------------------------------

TABLE = (
    VerifiedCombination("openvino", "bf16", True, True, 2.6, 0.998),
    VerifiedCombination("torch", "bf16", False, True, 3.0, 0.990),  # failed: never chosen
    VerifiedCombination("openvino", "fp32", True, False, 5.0, 0.9999),
    VerifiedCombination("onnxruntime", "fp32", True, False, 7.0, 0.9999),
    VerifiedCombination("torch", "fp32", True, False, 9.0, 1.0),
)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Set the verified table, the installed backends and native bf16 of a pretend machine."""

    def configure(*, installed: set[str], bf16: bool) -> None:
        monkeypatch.setattr(backends, "verified_combinations", lambda: TABLE)
        monkeypatch.setattr(backends, "backend_available", lambda name: name in installed)
        monkeypatch.setattr(backends, "native_bf16", lambda device="cpu": bf16)

    return configure


def test_auto_prefers_the_fastest_verified_combination(machine) -> None:  # type: ignore[no-untyped-def]
    machine(installed={"torch", "openvino", "onnxruntime"}, bf16=True)
    assert select_runtime("auto", "auto", "cpu") == RuntimeChoice("openvino", "bf16", CPU)
    assert select_runtime("auto", "fp32", "cpu") == RuntimeChoice("openvino", "fp32", CPU)
    assert select_runtime("onnxruntime", "auto", "cpu") == RuntimeChoice("onnxruntime", "fp32", CPU)
    # torch bf16 failed the accuracy check: auto precision with torch falls to fp32
    assert select_runtime("torch", "auto", "cpu") == RuntimeChoice("torch", "fp32", CPU)
    # an explicit request is honoured even if not verified
    assert select_runtime("torch", "bf16", "cpu") == RuntimeChoice("torch", "bf16", CPU)


def test_auto_without_native_bf16_stays_fp32(machine) -> None:  # type: ignore[no-untyped-def]
    machine(installed={"torch", "openvino"}, bf16=False)
    assert select_runtime("auto", "auto", "cpu") == RuntimeChoice("openvino", "fp32", CPU)
    assert select_runtime("openvino", "auto", "cpu") == RuntimeChoice("openvino", "fp32", CPU)


def test_auto_uses_only_installed_backends(machine) -> None:  # type: ignore[no-untyped-def]
    machine(installed={"torch", "onnxruntime"}, bf16=True)
    assert select_runtime("auto", "auto", "cpu") == RuntimeChoice("onnxruntime", "fp32", CPU)
    machine(installed={"torch"}, bf16=True)
    assert select_runtime("auto", "auto", "cpu") == RuntimeChoice("torch", "fp32", CPU)


def test_gpu_runs_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda", 0)
    assert select_runtime("auto", "auto", cuda) == RuntimeChoice("torch", "fp32", cuda)
    assert select_runtime("auto", "fp16", cuda) == RuntimeChoice("torch", "fp16", cuda)
    with pytest.raises(ConfigError, match="CPU only"):
        select_runtime("openvino", "auto", cuda)


def test_bad_choices_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        select_runtime("tensorrt", "auto", "cpu")
    with pytest.raises(ConfigError, match="unknown precision"):
        select_runtime("torch", "int8", "cpu")
    with pytest.raises(ConfigError, match="CUDA only"):
        select_runtime("torch", "fp16", "cpu")
    with pytest.raises(ConfigError, match="no bf16"):
        select_runtime("onnxruntime", "bf16", "cpu")


@pytest.mark.parametrize(
    ("backend", "command"), [("openvino", "pip install openvino"), ("onnxruntime", "hecktorseg[onnxruntime]")]
)
def test_missing_backend_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, backend: str, command: str
) -> None:
    real_find_spec = importlib.util.find_spec
    real_import = backends.importlib.import_module

    def find_spec(name: str, *args: object) -> object:
        return None if name.split(".")[0] in ("openvino", "onnxruntime") else real_find_spec(name, *args)

    def import_module(name: str, *args: object) -> object:
        if name.split(".")[0] in ("openvino", "onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(backends.importlib, "import_module", import_module)
    with pytest.raises(ConfigError, match="not installed") as info:
        Predictor([_tiny()], device="cpu", backend=backend, precision="fp32")
    assert command in str(info.value)
    # auto quietly falls back to what is installed
    assert Predictor([_tiny()], device="cpu").runtime.backend in ("torch",)


def test_shipped_table_is_sorted_and_has_the_reference() -> None:
    table = verified_combinations()
    assert [c.seconds for c in table] == sorted(c.seconds for c in table)
    ref = [c for c in table if (c.backend, c.precision) == ("torch", "fp32")]
    assert len(ref) == 1 and ref[0].passed
    for combo in table:
        assert combo.backend in backends.BACKENDS and combo.precision in ("fp32", "bf16")
        assert not combo.passed or combo.worst_dice >= 0.995


# -- TTA in batches, caches -----------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_batched_tta_equals_sequential_tta(backend: str) -> None:
    if not _installed(backend):
        pytest.skip(f"{backend} is not installed")
    x = _x(2)[0].numpy()
    cfg = PredictorConfig(device="cpu", backend=backend, precision="fp32", tta=True)  # type: ignore[arg-type]
    one = Predictor([_tiny(1)], cfg).predict_array(x, return_variance=True)
    eight = Predictor([_tiny(1)], cfg, tta_batch=8).predict_array(x, return_variance=True)
    three = Predictor([_tiny(1)], cfg, tta_batch=3).predict_array(x, return_variance=True)
    for got in (eight, three):
        np.testing.assert_allclose(got[0], one[0], atol=2e-5)
        np.testing.assert_allclose(got[1], one[1], atol=2e-6)


def test_second_predictor_does_not_convert_again(tmp_path: Path) -> None:
    if not _installed("openvino"):
        pytest.skip("openvino is not installed")
    backends.clear_compiled_cache()
    before = backends.conversion_counts().get("openvino", 0)
    cfg = PredictorConfig(device="cpu", backend="openvino", precision="fp32", cache=str(tmp_path))
    x = _x(4)[0].numpy()
    first = Predictor([_tiny(7)], cfg).predict_array(x)
    assert backends.conversion_counts()["openvino"] == before + 1
    second = Predictor([_tiny(7)], cfg).predict_array(x)  # a new module, same weights: in-process hit
    assert backends.conversion_counts()["openvino"] == before + 1
    np.testing.assert_array_equal(first, second)
    backends.clear_compiled_cache()  # a new process: the converted model is read from disk
    third = Predictor([_tiny(7)], cfg).predict_array(x)
    assert backends.conversion_counts()["openvino"] == before + 1
    np.testing.assert_allclose(third, first, atol=1e-6)
    assert list(tmp_path.glob("openvino/*/*/model.xml"))
    Predictor([_tiny(8)], cfg)  # other weights: converted
    assert backends.conversion_counts()["openvino"] == before + 2


def test_predictor_config_overrides_and_errors() -> None:
    cfg = PredictorConfig(tta=True, threshold=0.4)
    predictor = Predictor([_tiny()], cfg, device="cpu", backend="torch", precision="fp32")
    assert predictor.config.tta and predictor.config.threshold == 0.4
    assert predictor.runtime == RuntimeChoice("torch", "fp32", CPU)
    assert "backend=torch" in repr(predictor)
    with pytest.raises(ConfigError, match="threshold"):
        PredictorConfig(threshold=1.0)
    with pytest.raises(ConfigError, match="tta_batch"):
        PredictorConfig(tta_batch=0)
    with pytest.raises(TypeError, match="unknown Predictor option"):
        Predictor([_tiny()], device="cpu", tta_batches=2)


def test_cli_unknown_or_missing_backend_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from hecktorseg.cli import app

    args = ["predict", str(tmp_path), str(tmp_path / "out"), "--model", str(tmp_path / "m.pt")]
    result = CliRunner().invoke(app, [*args, "--backend", "tensorrt"])
    assert result.exit_code != 0
    assert "unknown backend 'tensorrt'" in result.output and "Traceback" not in result.output
    monkeypatch.setattr(backends, "backend_available", lambda name: name == "torch")
    monkeypatch.setattr(
        backends.importlib, "import_module", lambda name, *a: (_ for _ in ()).throw(ImportError(name))
    )
    result = CliRunner().invoke(app, [*args, "--backend", "onnxruntime"])
    assert result.exit_code != 0
    assert "hecktorseg[onnxruntime]" in " ".join(result.output.split())
