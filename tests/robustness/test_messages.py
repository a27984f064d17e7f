"""Unclear messages of issue 23's second corpus (finding 16): each is now one line naming the file or
flag, what is wrong and how to fix it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import SimpleITK as sitk
from robust_helpers import assert_clean_error, invoke, run_cli

PREDICT = ["--backend", "torch", "--device", "cpu"]


def _gc_input(raw_dataset: Path, dest: Path) -> Path:
    """A Grand Challenge input folder (``images/ct/ct.mha``, ``images/pet/pet.mha``) of the first case."""
    case = sorted(p for p in raw_dataset.iterdir() if p.is_dir())[0]
    for role, name in (("ct", f"{case.name}_ct.nii.gz"), ("pet", f"{case.name}_pt.nii.gz")):
        (dest / "images" / role).mkdir(parents=True)
        sitk.WriteImage(sitk.ReadImage(str(case / name)), str(dest / "images" / role / f"{role}.mha"))
    return dest


# -- files and folders ---------------------------------------------------------------------------------------
def test_a_truncated_mha_is_called_truncated(raw_dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    """ITK's stale errno made it "No such file or directory"."""
    gc_in = _gc_input(raw_dataset, tmp_path / "in")
    ct = gc_in / "images" / "ct" / "ct.mha"
    voxel_bytes = sitk.GetArrayFromImage(sitk.ReadImage(str(ct))).nbytes  # the full block, independently
    data = ct.read_bytes()
    ct.write_bytes(data[: len(data) - voxel_bytes // 2])
    code, output = invoke(
        ["container", "predict", "--input", gc_in, "--output", tmp_path / "out", "-m", checkpoint, *PREDICT]
    )
    line = assert_clean_error(code, output, "error:", str(ct), "truncated", str(voxel_bytes))
    assert "No such file" not in output
    assert str(voxel_bytes - voxel_bytes // 2) in line  # what it holds
    assert not (tmp_path / "out").exists()


def test_a_fifo_as_input_folder_says_what_it_is(checkpoint: Path, tmp_path: Path) -> None:
    """A FIFO ``--input`` was "input folder not found"."""
    fifo = tmp_path / "input"
    os.mkfifo(fifo)
    code, output = run_cli(
        ["container", "predict", "--input", fifo, "--output", tmp_path / "out", "-m", checkpoint, *PREDICT]
    )
    assert_clean_error(code, output, "error:", str(fifo), "FIFO", "not a folder")
    assert "not found" not in output


def _label_folder(raw_dataset: Path, dest: Path) -> Path:
    dest.mkdir()
    for case in sorted(p for p in raw_dataset.iterdir() if p.is_dir()):
        shutil.copyfile(case / f"{case.name}_ct_gtvt.nii.gz", dest / f"{case.name}.nii.gz")
    return dest


@pytest.mark.parametrize("strict", [False, True], ids=["scored-as-invalid", "strict"])
def test_a_broken_symlink_prediction_is_named_as_broken(
    strict: bool, raw_dataset: Path, tmp_path: Path
) -> None:
    """A dangling ``<PID>.nii.gz`` link was "no prediction found"."""
    truth = _label_folder(raw_dataset, tmp_path / "truth")
    pred = tmp_path / "pred"
    shutil.copytree(truth, pred)
    link = sorted(pred.iterdir())[0]
    link.unlink()
    link.symlink_to(tmp_path / "gone" / link.name)
    code, output = invoke(["evaluate", pred, truth, tmp_path / "out", "-e", "2021", *(["--strict"] * strict)])
    assert "no prediction found" not in output
    target = str(tmp_path / "gone" / link.name)
    if strict:
        assert_clean_error(code, output, "error:", str(link), "broken symbolic link", target)
    else:
        assert code == 0, output
        said = f"{link}: image file is a broken symbolic link: its target {target} does not exist"
        assert "".join(said.split()) in "".join(output.split()), output  # rich wraps the log line
        per_case = (tmp_path / "out" / "per_case.csv").read_text()
        assert said in per_case and "invalid" in per_case
