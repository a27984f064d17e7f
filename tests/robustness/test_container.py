"""The Grand Challenge image (``container build`` / ``container predict``) meets hostile arguments
and inputs (issue 23's second corpus)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from robust_helpers import assert_clean_error, invoke


# -- container build --force: never deletes the caller's files (finding 6) ----------------------------
@pytest.mark.parametrize("target", ["..", ".", "../b", "a-parent", "holds-model"])
def test_build_force_refuses_folders_holding_cwd_or_inputs(
    target: str, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``container build .. --force`` from a/b used to delete a/ and the checkpoint in it."""
    a = tmp_path / "a"
    (a / "b").mkdir(parents=True)
    model = shutil.copyfile(checkpoint, a / "model.pt")
    (a / "b" / "notes.txt").write_text("keep me")
    monkeypatch.chdir(a / "b")
    out = {"a-parent": str(tmp_path), "holds-model": str(a)}.get(target, target)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, output = invoke(["container", "build", out, "-m", model, "--force", "--no-sample"])
    assert_clean_error(code, output, "error:", "build context folder")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (a / "b" / "notes.txt").read_text() == "keep me"


# -- container build --image: no shell injection (finding 7) -------------------------------------------
@pytest.mark.parametrize("image", ["x:$(touch PWN)", "x;touch PWN", "x:`touch PWN`", "X:Y", "x y", "x:"])
def test_build_refuses_image_names_outside_dockers_grammar(
    image: str, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--image 'x:$(touch PWN)'`` used to go verbatim into run_sample.sh, which ran the command."""
    monkeypatch.chdir(tmp_path)
    code, output = invoke(["container", "build", "ctx", "-m", checkpoint, "--image", image])
    assert_clean_error(code, output, "error:", "not a valid Docker image name", "--image")
    assert not (tmp_path / "ctx").exists() and not (tmp_path / "PWN").exists()


@pytest.mark.parametrize(
    "image",
    ["hecktorseg-gc:1.0", "team/seg", "registry.example.com:5000/team/my_seg__v.2:V2-rc.1", "localhost/a-b"],
)
def test_valid_image_names_reach_run_sample_verbatim(image: str) -> None:
    """Names of Docker's grammar pass, and the script's quoting gives bash exactly the name."""
    from hecktorseg.container._checks import check_image_tag
    from hecktorseg.container.templates import _run_sample

    assert check_image_tag(image) == image
    lines = [line for line in _run_sample(image).splitlines() if "IMAGE=" in line and "$(" not in line]
    script = "\n".join(["set -u; set --", *lines, 'printf %s "$IMAGE"'])
    assert subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout == image


# -- container predict: ehr.json is not used, so it never stops a case (finding 2) --------------------
def _gc_input(raw_dataset: Path, dest: Path, ehr: bytes) -> Path:
    import SimpleITK as sitk

    case = sorted(p for p in raw_dataset.iterdir() if p.is_dir())[0]
    for role, name in (("ct", f"{case.name}_ct.nii.gz"), ("pet", f"{case.name}_pt.nii.gz")):
        (dest / "images" / role).mkdir(parents=True)
        sitk.WriteImage(sitk.ReadImage(str(case / name)), str(dest / "images" / role / f"{role}.mha"))
    (dest / "ehr.json").write_bytes(ehr)
    return dest


@pytest.mark.parametrize(
    "ehr",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"Age": ' + b"7" * 5000 + b"}",
        b'{"a": [' + b"1," * 600_000 + b"1]}",
        b"\xff\xfe",
    ],
    ids=["nested-100000-deep", "5000-digit-number", "over-1-MiB", "not-utf8"],
)
def test_a_bad_ehr_json_is_ignored_with_a_warning(
    ehr: bytes, raw_dataset: Path, checkpoint: Path, tmp_path: Path
) -> None:
    """Nested 100,000 deep or with a 5,000-digit number it used to end in a traceback, no output.mha."""
    from hecktorseg.container import OUTPUT_RELPATH

    gc_in = _gc_input(raw_dataset, tmp_path / "in", ehr)
    out = tmp_path / "out"
    code, output = invoke(
        [
            "container",
            "predict",
            "--input",
            gc_in,
            "--output",
            out,
            "-m",
            checkpoint,
            "--backend",
            "torch",
            "--device",
            "cpu",
        ]
    )
    assert code == 0 and "Traceback" not in output, output
    assert (out / OUTPUT_RELPATH).is_file()
    assert "clinical values ignored" in " ".join(output.split()), output


# -- labels above 2 never reach the challenge output (finding 9) ---------------------------------------
@pytest.fixture(scope="module")
def five_class_checkpoint(tmp_path_factory: pytest.TempPathFactory, small_config) -> Path:  # type: ignore[no-untyped-def]
    import torch

    from hecktorseg.config import to_dict
    from hecktorseg.models import build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("five") / "five.pt"
    model = build_model("senorm_unet", n_filters=2, n_classes=5)
    save_checkpoint(path, model, metadata={"preprocess": to_dict(small_config)})
    return path


def test_container_build_refuses_a_model_with_more_than_3_outputs(
    five_class_checkpoint: Path, tmp_path: Path
) -> None:
    """A 5-output model used to be accepted: the image would write labels 3 and 4."""
    code, output = invoke(
        ["container", "build", tmp_path / "ctx", "-m", five_class_checkpoint, "--no-sample"]
    )
    assert_clean_error(code, output, "error:", "5 output channels", "labels up to 4")
    assert not (tmp_path / "ctx").exists()


def test_container_predict_refuses_a_model_with_more_than_3_outputs(
    five_class_checkpoint: Path, raw_dataset: Path, tmp_path: Path
) -> None:
    """It used to write labels {0, 4} to output.mha with exit 0."""
    gc_in = _gc_input(raw_dataset, tmp_path / "in", b"{}")
    out = tmp_path / "out"
    code, output = invoke(
        [
            "container",
            "predict",
            "--input",
            gc_in,
            "--output",
            out,
            "-m",
            five_class_checkpoint,
            "--backend",
            "torch",
            "--device",
            "cpu",
        ]
    )
    assert_clean_error(code, output, "error:", "5 output channels")
    assert not out.exists() or not list(out.rglob("*.mha"))


def test_training_more_than_3_classes_warns(preprocessed: Path, tmp_path: Path) -> None:
    """``train --n-classes 5`` trained without a word (its score counts the empty classes as Dice 1.0)."""
    code, output = invoke(
        ["train", preprocessed, tmp_path / "runs", "--n-filters", "2", "--epochs", "1", "--device", "cpu",
         "--n-classes", "5", "--split", "random", "--n-folds", "3", "--fold", "0", "--batch-size", "1"]
    )  # fmt: skip
    assert code == 0, output
    assert "n_classes=5" in output and "never holds" in " ".join(output.split()), output
