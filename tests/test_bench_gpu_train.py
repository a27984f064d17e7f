"""benchmarks/bench_gpu_train.py runs in its quick mode on the CPU and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_training_benchmark_quick_mode_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu_train.json"
    # The CPU is asked for explicitly: no CUDA device is visible to the benchmark process.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu_train.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["machine"]["device"] == "cpu"
    assert {(r["precision"], r["channels_last"]) for r in result["compute"]} == {
        ("fp32", False),
        ("fp32", True),
        ("bf16", False),
        ("bf16", True),
    }
    assert all(r["ms_per_step"] > 0 and r["first_step_s"] > 0 for r in result["compute"])
    (run,) = result["end_to_end"]
    assert run["runtime"]["device"] == "cpu" and run["runtime"]["precision"] == "fp32"
    assert len(run["epoch_seconds"]) == 2 and run["steady_samples_per_s"] > 0
    # the training loop is a part of each epoch, so it is at least as fast as the whole epoch
    assert all(0 < a <= b for a, b in zip(run["train_loop_seconds"], run["epoch_seconds"], strict=True))
    assert run["loop_samples_per_s"] >= run["steady_samples_per_s"]
    assert run["first_epoch_overhead_s"] is not None and run["share_of_compute_only"] > 0
    # the demo's recipe, on the default device (the CPU here) and on 2 CPU threads
    assert [d["device"] for d in result["demo"]] == ["auto", "cpu"]
    assert result["demo"][1]["threads"] == 2 and result["demo"][1]["runtime"]["device"] == "cpu"
    assert all(d["loop_samples_per_s"] > 0 for d in result["demo"])
    assert result["demo_speedup_over_2_cpu_threads"] > 0
