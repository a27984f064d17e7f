"""The chain of the HECKTOR 2025/2026 docs on a tiny GTVp + GTVn dataset, through the command line.

synth → preprocess → train (3 outputs from the manifest) → predict (labels 0/1/2 on each
CT grid) → evaluate (2025 rules) → container predict (identical mask) → container build.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.container import OUTPUT_RELPATH
from hecktorseg.io import discover_cases, read_image, write_image
from hecktorseg.models import load_checkpoint

runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.output


@pytest.mark.slow
@pytest.mark.parametrize("edition", ["2025", "2026"])
def test_chain_from_synth_to_container(tmp_path: Path, edition: str) -> None:
    d, pre, runs, preds = (tmp_path / n for n in ("d", "pre", "runs", "preds"))
    _ok(["synth", str(d), "--edition", edition, "--cases", "4", "--tiny", "--seed", "2"])
    _ok(["preprocess", str(d), str(pre), "--spacing", "4.5", "--size", "32,32,48"])
    _ok(["train", str(pre), str(runs), "--fold", "0", "--epochs", "1", "--n-filters", "4",
         "--split", "random", "--n-folds", "2", "--num-workers", "0", "--device", "cpu",
         "--rotation-p", "0", "--mirror-p", "0"])  # fmt: skip
    best = runs / "fold_0" / "best.pt"
    loaded = load_checkpoint(best)
    assert loaded.metadata["n_classes"] == 3
    header = (runs / "fold_0" / "metrics.csv").read_text().splitlines()[0]
    assert "val_dice_gtvn" in header and "val_dsc_agg_gtvn" in header and "val_score" in header
    _ok(["predict", str(d), str(preds), "--model", str(best), "--device", "cpu",
         "--largest-component", "--min-gtvn-volume", "100"])  # fmt: skip
    cases = discover_cases(d)
    for case in cases:
        mask = sitk.ReadImage(str(preds / f"{case.patient_id}.nii.gz"))
        ct = sitk.ReadImage(str(case.ct_path))
        assert mask.GetPixelID() == sitk.sitkUInt8
        assert mask.GetSize() == ct.GetSize() and np.allclose(mask.GetOrigin(), ct.GetOrigin())
        assert set(np.unique(sitk.GetArrayFromImage(mask))) <= {0, 1, 2}
    _ok(["evaluate", str(preds), str(d), str(tmp_path / "scores"), "--edition", edition])
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    assert summary["n_cases"] == len(cases)
    for key in ("gtvp_mean_dice", "gtvn_dsc_agg", "gtvn_f1_agg", "gtvn_tp", "gtvn_fp", "gtvn_fn"):
        assert key in summary
    case = cases[0]
    gc_in = tmp_path / "gc" / "input"
    write_image(read_image(case.ct_path, kind="ct"), gc_in / "images" / "ct" / "ct.mha")
    write_image(read_image(case.pet_path, kind="pet"), gc_in / "images" / "pet" / "pet.mha")
    _ok(["container", "predict", "--input", str(gc_in), "--output", str(tmp_path / "gc" / "output"),
         "--model", str(best), "--device", "cpu", "--largest-component", "--min-gtvn-volume", "100"])  # fmt: skip
    got = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "gc" / "output" / OUTPUT_RELPATH)))
    want = sitk.GetArrayFromImage(sitk.ReadImage(str(preds / f"{case.patient_id}.nii.gz")))
    np.testing.assert_array_equal(got, want)
    _ok(["container", "build", str(tmp_path / "ctx"), "--model", str(best), "--tta", "--no-sample"])
    assert (tmp_path / "ctx" / "Dockerfile").is_file()
