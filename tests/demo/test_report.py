"""hecktorseg.demo.report: the report states what the training ran on and with which loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hecktorseg.demo import DemoConfig
from hecktorseg.demo.report import departures_from_paper, write_report, write_report_nodes
from hecktorseg.training import RunInfo, TrainConfig, resolve_loss_defaults


def _rows(report: str) -> dict[str, str]:
    return {
        line.split("|")[1].strip(): line.split("|")[3].strip()
        for line in report.splitlines()
        if line.startswith("| ") and line.count("|") == 4
    }


def test_a_gpu_run_is_reported_as_such(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("cuda_visible")
    runtime = RunInfo.resolve(
        torch.device("cuda", 0), torch.float16, grad_scaler=True, batch_size=1, augment_device="cuda:0"
    )
    ran = resolve_loss_defaults(TrainConfig(device="cpu"), 1)  # the config alone would say CPU
    path = write_report(tmp_path, DemoConfig(), ran, 0.7, {"P1": 0.7}, 0.6, 60.0, runtime)
    report = path.read_text(encoding="utf-8")
    assert "(cuda:0 (Pretend GPU), batch 1, fp16 autocast with gradient scaling)" in report
    assert _rows(report)["hardware"] == "cuda:0 (Pretend GPU), batch 1, fp16 autocast with gradient scaling"


def test_a_cpu_run_states_its_precision_batch_and_loss(tmp_path: Path) -> None:
    runtime = RunInfo.resolve(torch.device("cpu"), torch.bfloat16, grad_scaler=False, batch_size=2)
    cfg = DemoConfig(edition="2025")
    ran = resolve_loss_defaults(TrainConfig(device="cpu", amp=True, batch_size=2), 3)
    path = write_report_nodes(tmp_path, cfg, ran, {}, {}, 0.5, 60.0, min_gtvn_volume=200.0, runtime=runtime)
    report = path.read_text(encoding="utf-8")
    assert (
        "(CPU, batch 2, bf16 autocast; loss: Dice + cross-entropy, Dice per sample, classes absent" in report
    )
    rows = _rows(report)
    assert rows["loss"].startswith("Dice + cross-entropy")
    assert rows["post-processing"] == "GTVn components under 200 mm³ removed"
    assert rows["task"].startswith("GTVp + GTVn: 3 softmax outputs")


def test_without_a_record_the_report_takes_the_recorded_configuration(tmp_path: Path) -> None:
    ran = resolve_loss_defaults(TrainConfig(device="cpu", amp=False, batch_size=1), 1)
    report = write_report(tmp_path, DemoConfig(), ran, 0.7, {"P1": 0.7}, 0.6, 60.0).read_text(
        encoding="utf-8"
    )
    assert _rows(report)["hardware"] == "CPU, batch 1, fp32"
    bf16 = resolve_loss_defaults(TrainConfig(device="cpu", amp=True, channels_last=True), 1)
    rows = dict((name, demo) for name, _, demo in departures_from_paper(DemoConfig(), bf16))
    assert rows["hardware"] == "CPU, batch 1, bf16 autocast + channels-last"
