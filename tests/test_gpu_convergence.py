"""benchmarks/gpu_convergence.py runs in its quick mode on the CPU and compares the two augmentation paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_convergence_check_quick_mode_compares_both_paths_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "conv.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_convergence.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["device"] == "cpu"
    assert [(r["seed"], r["augment_device"]) for r in result["runs"]] == [(0, "cuda"), (0, "cpu")]
    assert all(0.0 <= r["final_val_dice"] <= 1.0 for r in result["runs"])
    (diff,) = result["final_val_dice_difference_per_seed"]
    runs = result["runs"]
    assert diff == pytest.approx(runs[0]["final_val_dice"] - runs[1]["final_val_dice"], abs=1e-4)
