"""hecktorseg.runtime: device, precision, autocast, native bf16, threads and the cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hecktorseg import runtime
from hecktorseg.errors import ConfigError


def test_resolve_device_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_device("auto") == torch.device("cpu")
    assert runtime.resolve_device(None) == torch.device("cpu")
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA device"):
        runtime.resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        runtime.resolve_device("tpu-please")


def test_resolve_device_picks_the_local_rank_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runtime.resolve_device("auto", local_rank=3) == torch.device("cuda", 1)
    assert runtime.resolve_device("cuda", local_rank=2) == torch.device("cuda", 0)
    assert runtime.resolve_device("cuda:1", local_rank=0) == torch.device("cuda", 1)
    assert runtime.resolve_device("cpu", local_rank=1) == torch.device("cpu")


def test_resolve_precision() -> None:
    assert runtime.resolve_precision("auto", "cpu") == "fp32"
    assert runtime.resolve_precision("auto", "cpu", auto="bf16") == "bf16"
    assert runtime.resolve_precision("bfloat16", "cpu") == "bf16"
    assert runtime.resolve_precision("FP32", "cpu") == "fp32"
    assert runtime.resolve_precision("float16", "cuda") == "fp16"
    with pytest.raises(ConfigError, match="CUDA only"):
        runtime.resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="unknown precision"):
        runtime.resolve_precision("int4", "cpu")


def test_autocast_dtype_and_context() -> None:
    assert runtime.autocast_dtype("fp32") is None
    assert runtime.autocast_dtype(None) is None
    assert runtime.autocast_dtype("bf16") is torch.bfloat16
    assert runtime.autocast_dtype("fp16") is torch.float16
    a = torch.ones(4, 4)
    with runtime.autocast("cpu", "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with runtime.autocast("cpu", torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
    with runtime.autocast("cpu", "fp32"):
        assert (a @ a).dtype == torch.float32
    with runtime.autocast(torch.device("cpu"), None):
        assert (a @ a).dtype == torch.float32


def test_native_bf16_from_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert runtime.native_bf16("cpu")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert runtime.native_bf16("cpu")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512bw"}))
    assert not runtime.native_bf16("cpu")
    # no /proc/cpuinfo (macOS, Windows): OpenVINO's capability list decides
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset())
    monkeypatch.setattr(runtime, "_openvino_bf16", lambda: True)
    assert runtime.native_bf16("cpu")
    assert not runtime.native_bf16("meta")


def test_cpu_flags_reads_proc_cpuinfo() -> None:
    if not Path("/proc/cpuinfo").exists():
        pytest.skip("no /proc/cpuinfo on this system")
    line = next(li for li in Path("/proc/cpuinfo").read_text().splitlines() if li.startswith("flags"))
    assert runtime.cpu_flags() == frozenset(line.split(":", 1)[1].split())


def test_set_threads() -> None:
    before = torch.get_num_threads()
    try:
        runtime.set_threads(1)
        assert torch.get_num_threads() == 1
        runtime.set_threads(None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError, match=">= 1"):
        runtime.set_threads(0)


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(runtime.CACHE_ENV, str(tmp_path / "mine"))
    assert runtime.cache_dir() == tmp_path / "mine"
    assert not (tmp_path / "mine").exists()
    assert runtime.cache_dir(create=True).is_dir()
    monkeypatch.delenv(runtime.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.cache_dir() == tmp_path / "xdg" / "hecktorseg"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runtime.cache_dir() == tmp_path / "home" / ".cache" / "hecktorseg"
