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


# -- reduced precision keeps the output block in float32 -------------------------------------------


def _dtypes_seen(model: torch.nn.Module) -> dict[str, torch.dtype]:
    """Record the input dtype of the first and the last convolution of ``model`` on each call."""
    seen: dict[str, torch.dtype] = {}
    first, last = model.block_1_1_left, model.conv1x1
    first.register_forward_hook(lambda m, i, o: seen.__setitem__("first", o.dtype))
    last.register_forward_hook(lambda m, i, o: seen.__setitem__("last", o.dtype))
    return seen


def test_torch_bf16_runs_the_features_in_bf16_and_the_head_in_fp32() -> None:
    model = _tiny(2)
    seen = _dtypes_seen(model)
    run = compile_model(model, RuntimeChoice("torch", "bf16", CPU), cache=False)
    x = _x(2)
    out = run(x)
    assert seen == {"first": torch.bfloat16, "last": torch.float32}
    assert out.dtype == torch.float32
    # the same as running the head by hand in float32 on the bf16 features (channels-last, as the backend)
    ref_model = _tiny(2).to(memory_format=torch.channels_last_3d)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        feats = ref_model.forward_features(x)
    with torch.no_grad():
        expected = ref_model.forward_head(feats.float())
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_torch_fp32_does_not_split() -> None:
    model = _tiny(2)
    seen = _dtypes_seen(model)
    compile_model(model, RuntimeChoice("torch", "fp32", CPU), cache=False)(_x(2))
    assert seen == {"first": torch.float32, "last": torch.float32}


def test_openvino_bf16_runs_two_stages_the_head_in_f32(tmp_path: Path) -> None:
    if not _installed("openvino"):
        pytest.skip("openvino is not installed")
    backends.clear_compiled_cache()
    run = compile_model(_tiny(3), RuntimeChoice("openvino", "bf16", CPU), cache=tmp_path)
    stages = run.stages  # type: ignore[attr-defined]
    assert [s.config["INFERENCE_PRECISION_HINT"] for s in stages] == ["bf16", "f32"]
    x = _x(3)
    got = run(x)
    assert sorted(p.parent.name for p in tmp_path.glob("openvino/*/*/*/model.xml")) == ["features", "head"]
    # the head alone, fed float32 features, gives float32 logits of the fp32 head to rounding
    model = _tiny(3)
    with torch.no_grad():
        feats = torch.from_numpy(stages[0](x.numpy()))
        head_ref = model.forward_head(feats)
    np.testing.assert_allclose(stages[1](feats.numpy()), head_ref.numpy(), atol=2e-3)
    # and the whole is close to torch fp32 (random weights: logits near 0, the worst case)
    diff = (torch.sigmoid(got) - _reference(model, x)).abs()
    assert float(diff.mean()) <= 0.01
    backends.clear_compiled_cache()
    again = compile_model(_tiny(3), RuntimeChoice("openvino", "bf16", CPU), cache=tmp_path)(x)
    np.testing.assert_allclose(again.numpy(), got.numpy(), atol=1e-6)  # read back from the disk cache


def test_a_model_without_the_split_runs_whole(tmp_path: Path) -> None:
    if not _installed("openvino"):
        pytest.skip("openvino is not installed")

    class Plain(torch.nn.Module):
        in_channels = 2

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv3d(2, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.conv(x)
            return out

    torch.manual_seed(0)
    run = compile_model(Plain(), RuntimeChoice("openvino", "bf16", CPU), cache=False)
    assert len(run.stages) == 1  # type: ignore[attr-defined]
    assert run(_x(4)).shape == (1, 1, 32, 32, 32)


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
    assert list(tmp_path.glob("openvino/*/*/model/model.xml"))
    Predictor([_tiny(8)], cfg)  # other weights: converted
    assert backends.conversion_counts()["openvino"] == before + 2


_NET_SOURCE = """
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 1, 1)

    def forward(self, x):
        return self.conv(x){tail}
"""


def _net_from_source(folder: Path, tail: str, monkeypatch: pytest.MonkeyPatch) -> torch.nn.Module:
    """``Net`` from a module file of its own: the same name, modules and weights; ``tail`` alters forward."""
    import importlib.util as util
    import sys

    folder.mkdir()
    path = folder / "net_module.py"
    path.write_text(_NET_SOURCE.format(tail=tail))
    spec = util.spec_from_file_location(f"net_module_{folder.name}", path)
    assert spec is not None and spec.loader is not None
    module = util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # where inspect finds the source file
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net: torch.nn.Module = module.Net()
    return net


def test_the_disk_cache_key_follows_the_code_of_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same modules, same weights, another ``forward`` (an upgrade): the conversion on disk is not reused."""
    old = _net_from_source(tmp_path / "old", "", monkeypatch)
    new = _net_from_source(tmp_path / "new", " * 2", monkeypatch)
    same = _net_from_source(tmp_path / "same", "", monkeypatch)
    assert repr(old) == repr(new) and type(old).__qualname__ == type(new).__qualname__
    assert backends._fingerprint(old) != backends._fingerprint(new)
    assert backends._fingerprint(old) == backends._fingerprint(same)


def test_an_unwritable_cache_folder_is_not_an_error(tmp_path: Path) -> None:
    """A cache that cannot be written (e.g. a read-only image) only loses the caching."""
    if not _installed("openvino"):
        pytest.skip("openvino is not installed")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    backends.clear_compiled_cache()
    cfg = PredictorConfig(device="cpu", backend="openvino", precision="fp32", cache=str(blocker / "cache"))
    x = _x(6)[0].numpy()
    got = Predictor([_tiny(6)], cfg).predict_array(x)
    want = Predictor([_tiny(6)], cfg, backend="torch").predict_array(x)
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert blocker.read_text() == ""  # untouched


def test_an_ensemble_beyond_the_live_limit_releases_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiled networks hold their working memory: beyond the limit the oldest give it back.

    Beyond the compiled limit the oldest are dropped altogether; a stage in use keeps its memory.
    """
    if not _installed("openvino"):
        pytest.skip("openvino is not installed")
    from collections import OrderedDict

    from hecktorseg.inference import _compiled

    monkeypatch.setattr(_compiled, "MAX_LIVE_NETWORKS", 2)
    monkeypatch.setattr(_compiled, "MAX_COMPILED_NETWORKS", 3)
    monkeypatch.setattr(_compiled, "_LIVE", OrderedDict())
    backends.clear_compiled_cache()
    cfg = PredictorConfig(device="cpu", backend="openvino", precision="fp32", cache=False)
    predictor = Predictor([_tiny(10 + k) for k in range(3)], cfg)
    x = _x(7)[0].numpy()
    first = predictor.predict_array(x)
    stages = [stage for model in predictor.models for stage in model.stages]  # type: ignore[attr-defined]
    assert [len(stage._compiled) for stage in stages] == [1, 1, 1]  # all three stay compiled
    assert [bool(stage._released) for stage in stages] == [True, False, False]  # the oldest gave memory back
    np.testing.assert_array_equal(predictor.predict_array(x), first)  # memory allocated again: same result
    assert [bool(stage._released) for stage in stages] == [True, False, False]
    reference = Predictor([_tiny(10 + k) for k in range(3)], cfg, backend="torch").predict_array(x)
    np.testing.assert_allclose(first, reference, atol=2e-3)

    # a fourth member pushes the oldest network out of the compiled set; its next run compiles it again
    extra = Predictor([_tiny(20)], cfg)
    extra.predict_array(x)
    assert [len(stage._compiled) for stage in stages] == [0, 1, 1]  # member 0 was least recently used
    np.testing.assert_array_equal(predictor.predict_array(x), first)

    # a stage in use keeps its memory (its outputs live there)
    shape = next(iter(stages[2]._compiled))
    with stages[2].in_use():
        stages[2].release(shape)
        assert not stages[2]._released
    stages[2].release(shape)
    assert stages[2]._released == {shape}
    backends.clear_compiled_cache()


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
    # The CPU asked for explicitly: the missing runtime's install hint, whatever the machine has.
    result = CliRunner().invoke(app, [*args, "--backend", "onnxruntime", "--device", "cpu"])
    assert result.exit_code != 0
    assert "hecktorseg[onnxruntime]" in " ".join(result.output.split())


@pytest.mark.parametrize("cuda", [False, True], ids=["cpu-only machine", "cuda visible"])
def test_cli_cpu_only_backend_with_the_auto_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, cuda: bool
) -> None:
    """``--device`` left at auto: the install hint without CUDA, "CPU only" where CUDA is visible."""
    from typer.testing import CliRunner

    from hecktorseg.cli import app

    request.getfixturevalue("cuda_visible" if cuda else "cuda_hidden")
    monkeypatch.setattr(backends, "backend_available", lambda name: name == "torch")
    monkeypatch.setattr(
        backends.importlib, "import_module", lambda name, *a: (_ for _ in ()).throw(ImportError(name))
    )
    args = ["predict", str(tmp_path), str(tmp_path / "out"), "--model", str(tmp_path / "m.pt")]
    result = CliRunner().invoke(app, [*args, "--backend", "onnxruntime"])
    output = " ".join(result.output.split())
    assert result.exit_code != 0 and "Traceback" not in result.output
    if cuda:
        assert "runs on the CPU only" in output and "--device cpu" in output
    else:
        assert "hecktorseg[onnxruntime]" in output
