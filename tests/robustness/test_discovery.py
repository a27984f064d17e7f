"""One image in two formats (issue 23's second corpus, finding 1): every reader names both files.

The shared discovery code (:func:`hecktorseg.io.image_files`) holds the rule, so preprocess,
predict, evaluate (predictions and ground truth) and the layouts all answer the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from robust_helpers import assert_clean_error, copy_dataset, invoke


def _blank_twin(path: Path) -> Path:
    """A blank ``.mha`` beside ``path`` (same grid), sorting before the ``.nii.gz`` it doubles."""
    image = sitk.ReadImage(str(path))
    blank = sitk.GetImageFromArray(np.zeros(sitk.GetArrayViewFromImage(image).shape, dtype=np.uint8))
    blank.CopyInformation(image)
    twin = path.with_name(path.name.replace(".nii.gz", ".mha"))
    sitk.WriteImage(blank, str(twin))
    return twin


@pytest.mark.parametrize("role", ["ct_gtvt", "ct"])
def test_preprocess_and_predict_name_both_files(
    role: str, raw_dataset: Path, checkpoint: Path, tmp_path: Path
) -> None:
    """A blank label (or CT) .mha beside the .nii.gz used to be taken silently (label all zeros, exit 0)."""
    raw = copy_dataset(raw_dataset, tmp_path / "raw")
    case = sorted(p for p in raw.iterdir() if p.is_dir())[0]
    twin = _blank_twin(case / f"{case.name}_{role}.nii.gz")
    code, output = invoke(["preprocess", raw, tmp_path / "pre", "--size", "16", "--spacing", "9"])
    line = assert_clean_error(
        code, output, "error:", "one image in two files", twin.name, f"{case.name}_{role}.nii.gz"
    )
    assert str(case) in line
    code, output = invoke(
        ["predict", raw, tmp_path / "pred", "-m", checkpoint, "--backend", "torch", "--device", "cpu"]
    )
    assert_clean_error(code, output, "error:", "one image in two files", twin.name)


@pytest.mark.parametrize("where", ["predictions", "truth"])
def test_evaluate_names_both_files(where: str, raw_dataset: Path, tmp_path: Path) -> None:
    """Predictions: .nii.gz used to be preferred silently; a truth folder with both scored the patient twice."""
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir()
    for case in sorted(p for p in raw_dataset.iterdir() if p.is_dir()):
        shutil.copyfile(case / f"{case.name}_ct_gtvt.nii.gz", truth / f"{case.name}.nii.gz")
    shutil.copytree(truth, pred)
    first = sorted(truth.iterdir())[0]
    twin = _blank_twin((pred if where == "predictions" else truth) / first.name)
    code, output = invoke(["evaluate", pred, truth, tmp_path / "out", "-e", "2021"])
    assert_clean_error(code, output, "one image in two files", twin.name, first.name)
