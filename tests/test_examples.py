"""Run the scripts of ``examples/`` in ``--quick`` mode and check what they produce.

Each script runs in a fresh interpreter (as a user would run it); the tests then
read the files it wrote and parse its printed summary. The YAML files of
``examples/`` are checked in tests/cli/test_preprocess.py and
tests/training/test_config.py.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from hecktorseg.io import Geometry, discover_cases, read_bbox_table
from hecktorseg.models import load_checkpoint
from hecktorseg.preprocessing import read_manifest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_example(name: str, out: Path, *extra: str, timeout: float = 180) -> str:
    """Run ``examples/<name> --quick --out OUT``; return its stdout (fail with its stderr)."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return proc.stdout


def field(stdout: str, label: str) -> str:
    """The value printed after ``label:`` on its own line."""
    match = re.search(rf"^{re.escape(label)}:\s*(.+)$", stdout, flags=re.MULTILINE)
    assert match, f"no '{label}:' line in:\n{stdout}"
    return match.group(1).strip()


def geometry_of(path: Path) -> Geometry:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return Geometry(
        size=reader.GetSize(),
        spacing=reader.GetSpacing(),
        origin=reader.GetOrigin(),
        direction=reader.GetDirection(),
    )


def test_examples_have_docstrings_and_help() -> None:
    for name in ("pipeline.py", "load_original_checkpoint.py", "custom_dataset.py"):
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        assert text.startswith('"""'), name
        assert "--quick" in text and "--out" in text, name
        assert 'if __name__ == "__main__":' in text, name


def test_pipeline_example(tmp_path: Path) -> None:
    out = tmp_path / "pipeline"
    stdout = run_example("pipeline.py", out)

    # the printed summary agrees with the files written
    summary = json.loads((out / "scores" / "summary.json").read_text())
    assert Path(field(stdout, "scores")) == out / "scores" / "summary.json"
    assert summary["edition"] == "2020"
    assert summary["n_cases"] == int(field(stdout, "held-out cases")) == 2
    assert summary["n_missing"] == 0
    mean_dice = float(field(stdout, "mean Dice (2020 rules)"))
    assert 0.0 <= mean_dice <= 1.0
    assert math.isclose(mean_dice, summary["mean_dice"], abs_tol=1e-4)
    printed = {m[0]: float(m[1]) for m in re.findall(r"^\s+(\S+): Dice ([0-9.]+)$", stdout, re.MULTILINE)}
    with (out / "scores" / "per_case.csv").open(newline="") as handle:
        rows = {r["patient_id"]: float(r["dice"]) for r in csv.DictReader(handle)}
    assert printed.keys() == rows.keys() and len(rows) == 2
    for pid, value in rows.items():
        assert math.isclose(printed[pid], value, abs_tol=1e-4)
    assert math.isclose(float(np.mean(list(rows.values()))), summary["mean_dice"], rel_tol=1e-5)

    # the model was trained on the coarse grid with the learn-fast settings
    ckpt = Path(field(stdout, "checkpoint"))
    assert ckpt == out / "model" / "fold_0" / "best.pt"
    loaded = load_checkpoint(ckpt)
    assert list(loaded.metadata["preprocess"]["size"]) == [32, 32, 32]
    assert list(loaded.metadata["preprocess"]["spacing"]) == [4.5, 4.5, 4.5]
    assert loaded.metadata["train"]["n_filters"] == 4
    assert (out / "model" / "fold_0" / "metrics.csv").is_file()

    # only the held-out patients were preprocessed for nothing: training data only
    held_out = discover_cases(out / "data" / "test")
    assert len(held_out) == 2
    assert not set(read_manifest(out / "data" / "preprocessed").patient_ids) & {
        c.patient_id for c in held_out
    }

    # every prediction lies on its patient's CT grid and is binary
    for case in held_out:
        pred = out / "predictions" / f"{case.patient_id}.nii.gz"
        assert geometry_of(pred).is_close(geometry_of(case.ct_path))
        values = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(pred)))).tolist())
        assert values <= {0, 1}


def test_load_original_checkpoint_example(tmp_path: Path) -> None:
    out = tmp_path / "original"
    stdout = run_example("load_original_checkpoint.py", out)

    # the simulated file looks like the original multi-GPU state dict
    ckpt = out / "original_model.pth"
    assert Path(field(stdout, "checkpoint")) == ckpt
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and state
    assert all(key.startswith("module.") for key in state)
    assert tuple(state["module.block_1_1_left.conv1.conv.weight"].shape) == (4, 2, 7, 7, 7)
    assert field(stdout, "model").startswith("SE-norm U-Net, n_filters 4")
    assert f"tensors restored {len(state)}" in field(stdout, "model")
    assert field(stdout, "preprocessing assumed").startswith("size (144, 144, 144), spacing (1.0, 1.0, 1.0)")
    assert "original (legacy crop True, CT fill 0 HU, PET statistics all)" in field(
        stdout, "preprocessing assumed"
    )

    # the mask went back onto the CT grid
    mask = Path(field(stdout, "mask"))
    ct = out / "data" / "CHGJ001" / "CHGJ001_ct.nii.gz"
    assert mask == out / "predictions" / "CHGJ001.nii.gz"
    assert geometry_of(mask).is_close(geometry_of(ct))
    assert field(stdout, "same grid") == "True"
    assert field(stdout, "CT grid  ").split("origin")[0] == field(stdout, "mask grid").split("origin")[0]
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(mask)))
    assert set(np.unique(array).tolist()) <= {0, 1}
    assert int(field(stdout, "foreground voxels")) == int(array.sum())


def test_custom_dataset_example(tmp_path: Path) -> None:
    out = tmp_path / "custom"
    stdout = run_example("custom_dataset.py", out)

    # the user's files under arbitrary names, one without a contour
    for name in ("patient_a", "patient_b"):
        assert (out / "my_data" / name / "CT.nii.gz").is_file()
        assert (out / "my_data" / name / "PET.nii.gz").is_file()
    assert (out / "my_data" / "patient_a" / "GTV.nii.gz").is_file()
    assert not (out / "my_data" / "patient_b" / "GTV.nii.gz").exists()

    # boxes come from the PET, are reported and saved as a reusable table
    manifest = read_manifest(out / "preprocessed")
    assert manifest.patient_ids == ["patient_a", "patient_b"]
    table = read_bbox_table(out / "boxes.csv")
    for pid, entry in manifest.entries.items():
        assert entry.box_source == "pet"
        assert f"{pid}: box from pet:" in stdout
        assert field(stdout, f"{pid}: tumour centre inside the box") == "True"
        assert np.allclose(table[pid].lower, entry.bbox.lower, atol=1e-3)
        assert np.allclose(table[pid].upper, entry.bbox.upper, atol=1e-3)
        assert np.allclose(table[pid].size, 144.0, atol=1e-3)
        assert entry.reference.size == (32, 32, 32)
        assert np.allclose(entry.reference.spacing, 4.5)
        assert geometry_of(entry.ct_path).is_close(entry.reference)
        assert geometry_of(entry.pet_path).is_close(entry.reference)
        assert entry.ct_geometry.is_close(geometry_of(out / "my_data" / pid / "CT.nii.gz"))
        picture = Path(field(stdout, f"{pid}: picture"))
        assert picture == out / "pictures" / f"{pid}.png"
        assert picture.read_bytes()[:8] == PNG_MAGIC
    assert manifest.entries["patient_a"].label_path is not None
    assert manifest.entries["patient_b"].label_path is None
