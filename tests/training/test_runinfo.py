"""hecktorseg.training.runinfo: the record of what a run resolved to, and TF32."""

from __future__ import annotations

import pytest
import torch
import yaml

from hecktorseg.training.runinfo import RunInfo, apply_tf32, precision_name
from hecktorseg.training.seeding import deterministic_algorithms


def test_precision_names() -> None:
    assert precision_name(None) == "fp32"
    assert precision_name(torch.float16) == "fp16"
    assert precision_name(torch.bfloat16) == "bf16"


def test_a_cuda_run_describes_its_gpu(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("cuda_visible")
    info = RunInfo.resolve(
        torch.device("cuda", 0),
        torch.float16,
        grad_scaler=True,
        batch_size=2,
        augment_device="cuda:0",
        channels_last=True,
        tf32=True,
        cudnn_benchmark=False,
    )
    assert info.on_gpu and info.device_name == "Pretend GPU"
    assert info.hardware() == "cuda:0 (Pretend GPU), batch 2, fp16 autocast with gradient scaling"
    assert info.describe().endswith("augmentation on cuda:0, channels-last-3d, TF32 on")
    assert RunInfo.from_dict({**info.to_dict(), "added_later": 1}) == info
    tuned = RunInfo.from_dict({**info.to_dict(), "cudnn_benchmark": True})
    assert tuned.describe().endswith("TF32 on, cuDNN autotuning")


def test_yaml_comment_is_only_comments() -> None:
    info = RunInfo.resolve(torch.device("cpu"), None, grad_scaler=False, batch_size=1)
    comment = info.yaml_comment()
    assert all(line.startswith("#") for line in comment.splitlines())
    assert yaml.safe_load(comment + "a: 1\n") == {"a": 1}
    assert "#   precision: fp32" in comment and info.hardware() == "CPU, batch 1, fp32"


def test_tf32_is_set_on_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert apply_tf32(True, torch.device("cpu")) is None
    calls: list[str] = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", calls.append)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    assert apply_tf32(False, torch.device("cuda", 0)) is False
    assert torch.backends.cudnn.allow_tf32 is False and calls == ["highest"]
    assert apply_tf32(True, torch.device("cuda", 0)) is True
    assert torch.backends.cudnn.allow_tf32 is True and calls == ["highest", "high"]


@pytest.mark.parametrize(
    ("deterministic", "benchmark", "during"),
    [(False, False, False), (False, True, True), (True, True, False)],
    ids=["default-off", "asked-for", "deterministic-wins"],
)
def test_cudnn_autotuning_is_off_unless_asked_for_and_restored_after(
    monkeypatch: pytest.MonkeyPatch, deterministic: bool, benchmark: bool, during: bool
) -> None:
    """The flag only (no GPU needed): a CUDA run sets it as asked, a CPU run leaves it alone."""
    before = not during  # so that restoring it shows
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", before)
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: None)
    with deterministic_algorithms(deterministic, torch.device("cuda", 0), benchmark=benchmark):
        assert torch.backends.cudnn.benchmark is during
    assert torch.backends.cudnn.benchmark is before
    with deterministic_algorithms(False, torch.device("cpu"), benchmark=during):
        assert torch.backends.cudnn.benchmark is before
