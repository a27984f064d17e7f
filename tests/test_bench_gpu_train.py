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
    assert all(r["ms_per_step"] > 0 for r in result["compute"])
    (run,) = result["end_to_end"]
    assert run["runtime"]["device"] == "cpu" and run["runtime"]["precision"] == "fp32"
    assert len(run["epoch_seconds"]) == 2 and run["steady_samples_per_s"] > 0
    assert run["first_epoch_overhead_s"] is not None and run["share_of_compute_only"] > 0
    assert result["demo"][0]["device"] == "cpu" and result["demo"][0]["samples_per_s"] > 0
