"""Unclear messages of issue 23's second corpus (finding 16): each is now one line naming the file or
flag, what is wrong and how to fix it."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

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


# -- checkpoints ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["x\n", "hello\n", "some text", "spacing: 9\n", ""],
    ids=["unpickling-error", "key-error", "index-error", "yaml", "empty"],
)
def test_a_text_file_as_checkpoint_is_not_a_pytorch_checkpoint(
    text: str, raw_dataset: Path, tmp_path: Path
) -> None:
    """Text gave "holds objects other than tensors", a KeyError, or an IndexError traceback."""
    ckpt = tmp_path / "model.pt"
    ckpt.write_text(text)
    code, output = invoke(["predict", raw_dataset, tmp_path / "pred", "-m", ckpt, *PREDICT])
    assert_clean_error(code, output, "error:", str(ckpt), "not a PyTorch checkpoint")
    assert "other than tensors" not in output


def _with_metadata(checkpoint: Path, dest: Path, **preprocess: Any) -> Path:
    import torch

    payload = torch.load(checkpoint, weights_only=True)
    payload["metadata"]["preprocess"].update(preprocess)
    torch.save(payload, dest)
    return dest


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("ct_fill", math.nan, "finite"),
        ("pet_fill", math.inf, "finite"),
        ("spacing", [0.0, 9.0, 9.0], "positive"),
        ("size", [100_000, 100_000, 100_000], "too large"),
    ],
    ids=["ct-fill-nan", "pet-fill-inf", "spacing-0", "absurd-size"],
)
def test_bad_preprocessing_in_checkpoint_metadata_names_the_checkpoint_and_field(
    field: str, value: Any, problem: str, checkpoint: Path, raw_dataset: Path, tmp_path: Path
) -> None:
    """NaN ct_fill: "its weights are broken"; spacing 0: no checkpoint name; an absurd size: ITK's
    allocation error."""
    ckpt = _with_metadata(checkpoint, tmp_path / "model.pt", **{field: value})
    code, output = invoke(["predict", raw_dataset, tmp_path / "pred", "-m", ckpt, *PREDICT])
    assert_clean_error(code, output, "error:", str(ckpt), "metadata.preprocess", field, problem)
    assert "weights are broken" not in output and "allocate" not in output
    assert not (tmp_path / "pred").exists()


def test_an_absurd_grid_is_refused_before_preprocessing(raw_dataset: Path, tmp_path: Path) -> None:
    code, output = invoke(["preprocess", raw_dataset, tmp_path / "pre", "--size", "4096"])
    assert_clean_error(code, output, "error:", "size", "too large")
    assert not (tmp_path / "pre").exists()


# -- flags ---------------------------------------------------------------------------------------------------
def test_container_threads_0_names_the_flag(raw_dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    """``--threads 0`` said "num_threads must be >= 1", a name the command line does not have."""
    gc_in = _gc_input(raw_dataset, tmp_path / "in")
    code, output = invoke(
        ["container", "predict", "--input", gc_in, "--output", tmp_path / "out", "-m", checkpoint,
         "--threads", "0", *PREDICT]
    )  # fmt: skip
    assert_clean_error(code, output, "--threads")
    assert "num_threads" not in output


def test_a_library_thread_count_below_1_names_the_parameter_and_the_fix() -> None:
    from hecktorseg.cli._common import error_line
    from hecktorseg.errors import ConfigError
    from hecktorseg.inference import PredictorConfig

    with pytest.raises(ConfigError) as info:
        PredictorConfig(num_threads=0)
    assert "num_threads" in str(info.value) and info.value.hint
    assert "--threads" in error_line(info.value)
