"""The command-line workflow from synthetic data to scores and pictures, and ``hecktorseg demo``.

Everything runs in-process through :class:`typer.testing.CliRunner` on tiny
phantoms and a coarse 32³ grid, so a whole train → predict → evaluate cycle
takes seconds on 2 CPU cores. The model learns little in one or two epochs:
the tests check the plumbing (exit codes, files, grids, summaries), not the
quality of the segmentation.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import yaml
from typer.testing import CliRunner, Result

from hecktorseg.cli import app
from hecktorseg.io import Geometry, discover_cases
from hecktorseg.models import load_checkpoint
from hecktorseg.preprocessing import read_manifest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str) -> Result:
    """Run ``hecktorseg ARGS`` and require exit code 0."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"hecktorseg {' '.join(args)} -> {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output
    return result


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


def assert_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path


@pytest.mark.slow
def test_cli_synth_preprocess_train_predict_evaluate_visualize(tmp_path: Path) -> None:
    torch.manual_seed(0)
    raw, pre, runs = tmp_path / "raw", tmp_path / "pre", tmp_path / "runs"
    preds, scores, pictures = tmp_path / "preds", tmp_path / "scores", tmp_path / "pictures"

    # synth: six tiny HECKTOR 2020-style patients with a box table
    invoke("synth", str(raw), "--cases", "6", "--edition", "2020", "--tiny", "--seed", "1")
    cases = discover_cases(raw, require_labels=True)
    ids = [c.patient_id for c in cases]
    assert len(ids) == 6 and all(c.bbox is not None for c in cases)

    # preprocess: 32³ voxels of 4.5 mm over each table box
    invoke("preprocess", str(raw), str(pre), "--size", "32", "--spacing", "4.5")
    manifest = read_manifest(pre)
    assert manifest.patient_ids == ids
    for entry in manifest.entries.values():
        assert entry.box_source == "table"
        assert entry.reference.size == (32, 32, 32)
        assert np.allclose(entry.reference.spacing, 4.5)
        assert geometry_of(entry.ct_path).is_close(entry.reference)
        assert entry.label_path is not None and geometry_of(entry.label_path).is_close(entry.reference)

    # train: one fold, two epochs, a tiny network on the CPU
    invoke(
        "train", str(pre), str(runs),
        "--epochs", "2", "--n-filters", "4", "--lr", "0.01", "--num-workers", "0", "--device", "cpu",
        "--split", "random", "--n-folds", "3", "--fold", "0", "--rotation-p", "0", "--no-plot",
    )  # fmt: skip
    fold = runs / "fold_0"
    for name in ("best.pt", "last.pt", "metrics.csv", "config.yaml", "split.json"):
        assert (fold / name).is_file(), name
    with (fold / "metrics.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2  # one row per epoch
    ckpt = load_checkpoint(fold / "best.pt")
    assert ckpt.metadata["train"]["n_filters"] == 4
    assert list(ckpt.metadata["preprocess"]["size"]) == [32, 32, 32]

    # predict: masks on each patient's original CT grid
    invoke("predict", str(raw), str(preds), "--model", str(fold / "best.pt"), "--device", "cpu")
    for case in cases:
        mask = preds / f"{case.patient_id}.nii.gz"
        assert geometry_of(mask).is_close(geometry_of(case.ct_path)), case.patient_id
        image = sitk.ReadImage(str(mask))
        assert image.GetPixelID() == sitk.sitkUInt8
        assert set(np.unique(sitk.GetArrayViewFromImage(image)).tolist()) <= {0, 1}

    # evaluate: the 2020 rules, per_case.csv and summary.json
    invoke("evaluate", str(preds), str(raw), str(scores), "--edition", "2020")
    summary = json.loads((scores / "summary.json").read_text())
    assert summary["n_cases"] == 6
    assert summary["n_missing"] == 0
    assert 0.0 <= summary["mean_dice"] <= 1.0
    with (scores / "per_case.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["patient_id"] for r in rows] == ids
    assert math.isclose(float(np.mean([float(r["dice"]) for r in rows])), summary["mean_dice"], rel_tol=1e-5)

    # visualize: one PNG per patient with the prediction overlaid
    invoke("visualize", str(raw), str(pictures), "--predictions", str(preds))
    for pid in ids:
        assert_png(pictures / f"{pid}.png")


def test_cli_demo_smallest_settings(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    invoke(
        "demo", str(out),
        "--n-train", "3", "--n-val", "1", "--n-test", "1", "--epochs", "1",
        "--n-filters", "4", "--size", "16", "--spacing", "9",
    )  # fmt: skip
    report = out / "report.md"
    assert report.is_file()
    text = report.read_text(encoding="utf-8")
    match = re.search(r"Held-out mean Dice[^*\n]*\*\*([0-9.]+)\*\*", text)
    assert match and 0.0 <= float(match.group(1)) <= 1.0
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert "model/fold_0/learning_curves.png" in pictures
    assert len([p for p in pictures if p.startswith("pictures/")]) == 1  # the one held-out patient
    assert "(review/index.html)" in text and (out / "review" / "index.html").is_file()  # the review page
    for relative in pictures:
        assert_png(out / relative)
    summary = json.loads((out / "scores" / "summary.json").read_text())
    assert summary["n_cases"] == 1
    assert math.isclose(summary["mean_dice"], float(match.group(1)), abs_tol=5e-4)
    # the report states how the demo departs from the paper, and agrees with the recorded run
    assert "How this demo departs from the paper" in text and "not comparable with the paper's 0.759" in text
    trained = yaml.safe_load((out / "model" / "fold_0" / "config.yaml").read_text())
    rows = {
        line.split("|")[1].strip(): line.split("|")[3].strip()
        for line in text.splitlines()
        if line.startswith("| ") and line.count("|") == 4
    }
    assert rows["learning rate"] == f"{trained['lr']:g}" != "0.001"
    assert rows["filters (first level)"] == str(trained["n_filters"]) == "4"
    assert (
        rows["schedule"] == f"one cosine cycle of {trained['t_0']} epochs"
        and trained["t_0"] == trained["epochs"]
    )
    assert rows["rotation"] == "none" and trained["rotation_p"] == 0.0
    assert rows["grid"] == "16³ voxels of 9 mm"
    assert trained["mirror_axes"] == [1, 3] and "1–3 axes" in rows["mirroring"]


def test_cli_demo_2025_smallest_settings(tmp_path: Path) -> None:
    """``demo --edition 2025``: a 3-output model, labels 0/1/2 on the CT grids, the 2025 scores."""
    out = tmp_path / "demo"
    invoke(
        "demo", str(out), "--edition", "2025",
        "--n-train", "3", "--n-val", "1", "--n-test", "2", "--epochs", "1",
        "--n-filters", "4", "--size", "16", "--spacing", "9",
    )  # fmt: skip
    text = (out / "report.md").read_text(encoding="utf-8")
    summary = json.loads((out / "scores" / "summary.json").read_text())
    assert summary["n_cases"] == 2
    for key, name in (("gtvp_mean_dice", "GTVp mean Dice"), ("gtvn_dsc_agg", "GTVn aggregated Dice")):
        match = re.search(rf"{name}[^*\n]*\*\*([0-9.–]+)\*\*", text)
        assert match, name
        if math.isfinite(summary[key]):
            assert math.isclose(summary[key], float(match.group(1)), abs_tol=5e-4)
    assert "green: GTVp, magenta: GTVn" in text
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len([p for p in pictures if p.startswith("pictures/")]) == 2
    for relative in pictures:
        assert_png(out / relative)
    # the model has 3 outputs and the masks hold labels from {0, 1, 2}
    assert "val_dice_gtvn" in (out / "model" / "fold_0" / "metrics.csv").read_text().splitlines()[0]
    import numpy as np
    import SimpleITK as sitk

    for mask in (out / "predictions").glob("*.nii.gz"):
        image = sitk.ReadImage(str(mask))
        assert image.GetPixelID() == sitk.sitkUInt8
        assert set(np.unique(sitk.GetArrayFromImage(image))) <= {0, 1, 2}
