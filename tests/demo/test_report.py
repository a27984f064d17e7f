"""hecktorseg.demo.report: the report states the hardware the training actually ran on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hecktorseg.demo import DemoConfig
from hecktorseg.demo.report import write_report, write_report_nodes
from hecktorseg.training import RunInfo, TrainResult


def _result(tmp_path: Path, runtime: RunInfo | None) -> TrainResult:
    fold = tmp_path / "model" / "fold_0"
    return TrainResult(fold, fold / "best.pt", fold / "last.pt", 0.5, 3, fold / "metrics.csv", (), runtime)


def test_a_gpu_run_is_reported_as_such(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("cuda_visible")
    runtime = RunInfo.resolve(
        torch.device("cuda", 0), torch.float16, grad_scaler=True, batch_size=1, augment_device="cuda:0"
    )
    text = write_report(tmp_path, DemoConfig(), 0.7, {"P1": 0.7}, 0.6, 60.0, _result(tmp_path, runtime))
    report = text.read_text(encoding="utf-8")
    assert "epochs on cuda:0 (Pretend GPU)." in report
    assert (
        "| hardware | two GPUs, batch 1 each | cuda:0 (Pretend GPU), batch 1, fp16 autocast with " in report
    )
    assert "on the CPU" not in report and "fp32" not in report


def test_a_cpu_run_states_its_precision_and_batch(tmp_path: Path) -> None:
    runtime = RunInfo.resolve(torch.device("cpu"), torch.bfloat16, grad_scaler=False, batch_size=2)
    cfg = DemoConfig(edition="2025")
    path = write_report_nodes(tmp_path, cfg, {}, {}, 0.5, 60.0, depth=48, result=_result(tmp_path, runtime))
    report = path.read_text(encoding="utf-8")
    assert "epochs on the CPU (CPU, batch 2, bf16 autocast)." in report


def test_without_a_record_the_report_claims_nothing(tmp_path: Path) -> None:
    report = write_report(tmp_path, DemoConfig(), 0.7, {"P1": 0.7}, 0.6, 60.0).read_text(encoding="utf-8")
    assert "(not recorded)" in report and "on the CPU" not in report
