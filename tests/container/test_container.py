"""``container predict`` (the inside of the Grand Challenge image) and ``container build``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from hecktorseg._version import __version__
from hecktorseg.cli import app
from hecktorseg.container import (
    BUILD_FILES,
    OUTPUT_RELPATH,
    TORCH_VERSION,
    archive_name,
    build_context,
    container_predict,
    find_container_input,
)
from hecktorseg.errors import ConfigError, DataError, OutputError
from hecktorseg.inference import Predictor, backend_available, predict_dataset, prepare_openvino_cache
from hecktorseg.io import Case, read_image, write_image
from hecktorseg.models import load_checkpoint

runner = CliRunner()


def make_gc_input(case: Case, dest: Path, *, ehr: str | None = '{"Age": 60, "HPV Status": null}') -> Path:
    """Write a case as a Grand Challenge input folder (.mha files with arbitrary names)."""
    write_image(read_image(case.ct_path, kind="ct"), dest / "images" / "ct" / "8c1d-ct.mha")
    write_image(read_image(case.pet_path, kind="pet"), dest / "images" / "pet" / "0a7f-pet.mha")
    if ehr is not None:
        (dest / "ehr.json").write_text(ehr)
    return dest


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing())
        and np.allclose(a.GetOrigin(), b.GetOrigin())
        and np.allclose(a.GetDirection(), b.GetDirection())
    )


def test_container_predict_equals_predict(
    nodes_dataset: tuple[Path, list[Case]], three_class_ckpts: list[Path], tmp_path: Path
) -> None:
    root, cases = nodes_dataset
    predictor = Predictor.from_checkpoints(three_class_ckpts, device="cpu", tta=True)
    report = predict_dataset(root, tmp_path / "preds", predictor)
    assert report.ok and len(report.done) == 2
    for case in cases:
        gc_in = make_gc_input(case, tmp_path / case.patient_id / "input")
        gc_out = tmp_path / case.patient_id / "output"
        result = container_predict(gc_in, gc_out, models=three_class_ckpts, tta=True, device="cpu")
        assert result.output_path == gc_out / OUTPUT_RELPATH and result.output_path.is_file()
        assert result.input.ehr == {"Age": 60, "HPV Status": None}
        got = sitk.ReadImage(str(result.output_path))
        want = sitk.ReadImage(str(tmp_path / "preds" / f"{case.patient_id}.nii.gz"))
        ct = sitk.ReadImage(str(case.ct_path))
        assert got.GetPixelID() == sitk.sitkUInt8
        assert _same_grid(got, ct)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(want))
        assert set(np.unique(sitk.GetArrayFromImage(got))) <= {0, 1, 2}


def test_container_cli_and_entry_point_defaults(
    nodes_dataset: tuple[Path, list[Case]], three_class_ckpts: list[Path], tmp_path: Path
) -> None:
    _, cases = nodes_dataset
    gc_in = make_gc_input(cases[0], tmp_path / "in", ehr=None)
    result = runner.invoke(
        app,
        ["container", "predict", "--input", str(gc_in), "--output", str(tmp_path / "out"),
         "--model", str(three_class_ckpts[0]), "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / OUTPUT_RELPATH).is_file()
    # --input and --output default to the Grand Challenge folders
    help_text = runner.invoke(app, ["container", "predict", "--help"]).output
    assert "/input" in help_text and "/output" in help_text


@pytest.mark.parametrize("n_ct", [0, 2])
def test_ct_folder_with_zero_or_two_images_is_a_one_line_error(
    nodes_dataset: tuple[Path, list[Case]], three_class_ckpts: list[Path], tmp_path: Path, n_ct: int
) -> None:
    _, cases = nodes_dataset
    gc_in = make_gc_input(cases[0], tmp_path / "in")
    ct_dir = gc_in / "images" / "ct"
    if n_ct == 0:
        (ct_dir / "8c1d-ct.mha").unlink()
    else:
        shutil.copy(ct_dir / "8c1d-ct.mha", ct_dir / "second.mha")
    with pytest.raises(DataError, match=f"exactly one CT image, found {n_ct}"):
        find_container_input(gc_in)
    result = runner.invoke(
        app,
        ["container", "predict", "--input", str(gc_in), "--output", str(tmp_path / "out"),
         "--model", str(three_class_ckpts[0])],
    )  # fmt: skip
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "images/ct" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "out" / OUTPUT_RELPATH).exists()


def test_missing_pet_is_a_clear_error_and_a_bad_ehr_only_a_warning(
    nodes_dataset: tuple[Path, list[Case]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, cases = nodes_dataset
    gc_in = make_gc_input(cases[0], tmp_path / "in", ehr="[1, 2]")
    with caplog.at_level("WARNING"):
        found = find_container_input(gc_in)  # ehr.json is not used by the segmentation
    assert found.ct_path.is_file() and found.ehr is None and "not a JSON object" in caplog.text
    shutil.rmtree(gc_in / "images" / "pet")
    with pytest.raises(DataError, match="no pet folder"):
        find_container_input(gc_in)


def test_build_writes_a_complete_context(three_class_ckpts: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "ctx"
    result = build_context(out, three_class_ckpts, tta=True, min_gtvn_volume=50.0)
    for name in BUILD_FILES:
        assert (out / name).is_file(), name
    assert {p.name for p in (out / "models").iterdir()} == {"model_0.pt", "model_1.pt"}
    assert (out / "models" / "model_0.pt").read_bytes() == three_class_ckpts[0].read_bytes()
    assert (out / "src" / "hecktorseg" / "container" / "predict.py").is_file()
    assert not list(out.rglob("__pycache__"))
    assert (out / "sample" / "input" / "images" / "ct" / "sample-ct.mha").is_file()
    assert (out / "sample" / "input" / "images" / "pet" / "sample-pet.mha").is_file()
    assert json.loads((out / "sample" / "input" / "ehr.json").read_text())["PatientID"] == "SAMPLE-001"
    assert set(result.files) >= set(BUILD_FILES)
    assert os.access(out / "run_sample.sh", os.X_OK) and os.access(out / "entrypoint.py", os.X_OK)

    docker = (out / "Dockerfile").read_text()
    instructions = [
        line.split()[0]
        for line in docker.splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    ]
    user_at = max(i for i, word in enumerate(instructions) if word == "USER")
    # a non-root user, set after every RUN (nothing is installed or fetched once the user runs)
    user_line = next(line for line in docker.splitlines() if line.startswith("USER "))
    assert user_line.split()[1] not in ("root", "0")
    assert all(word != "RUN" for word in instructions[user_at:])
    # a CPU torch, pinned, from the CPU index; hecktorseg from the copied source
    assert (
        "--extra-index-url https://download.pytorch.org/whl/cpu -r /opt/algorithm/requirements.txt" in docker
    )
    assert "COPY src/" in docker and "COPY models/" in docker
    # the base image pinned by tag and, for a known Python, by digest
    base = next(line for line in docker.splitlines() if line.startswith("FROM ")).split()[1]
    assert re.fullmatch(r"python:3\.\d+-slim(@sha256:[0-9a-f]{64})?", base)
    entry = next(line for line in docker.splitlines() if line.startswith("ENTRYPOINT"))
    assert "entrypoint.py" in entry and not re.search(r"pip|curl|wget|http", entry)
    requirements = (out / "requirements.txt").read_text().split()
    assert all("==" in r for r in requirements) and any(r.startswith("numpy==") for r in requirements)
    assert f"torch=={TORCH_VERSION}+cpu" in requirements and any(
        r.startswith("openvino==") for r in requirements
    )
    entrypoint = (out / "entrypoint.py").read_text()
    assert "http" not in entrypoint and "--tta" in entrypoint and "'--min-gtvn-volume', '50.0'" in entrypoint
    script = (out / "run_sample.sh").read_text()
    assert "--network none" in script and ":/input:ro" in script and ":/output" in script
    info = json.loads((out / "build-info.json").read_text())
    assert info["tta"] is True and len(info["models"]) == 2 and len(info["models"][0]["sha256"]) == 64
    readme = (out / "README.md").read_text()
    assert "docker save" in readme and "output.mha" in readme
    assert "PYTHONPATH=src python entrypoint.py --input sample/input" in readme
    # the model list is nested under its heading item
    assert "\n  - `models/model_0.pt`\n  - `models/model_1.pt`\n" in readme
    assert f"> {archive_name('hecktorseg-gc:' + __version__)}" in readme
    # the context is not silently replaced
    with pytest.raises(ConfigError, match="not empty"):
        build_context(out, three_class_ckpts)


def _image_env(out: Path, **more: str) -> dict[str, str]:
    """The entry point's environment: the context's own copy of hecktorseg first on the path; the
    other packages stay where this interpreter finds them (site-packages, or a PYTHONPATH)."""
    inherited = os.environ.get("PYTHONPATH", "")
    path = os.pathsep.join(p for p in (str(out / "src"), inherited) if p)
    return {**os.environ, "PYTHONPATH": path, **more}


def test_built_entry_point_runs_on_folders(
    nodes_dataset: tuple[Path, list[Case]], three_class_ckpts: list[Path], tmp_path: Path
) -> None:
    """The entry point of the image, run from the build context with its own copy of hecktorseg."""
    _, cases = nodes_dataset
    out = tmp_path / "ctx"
    runner_result = runner.invoke(
        app, ["container", "build", str(out), "--model", str(three_class_ckpts[0]), "--no-sample"]
    )
    assert runner_result.exit_code == 0, runner_result.output
    assert not (out / "sample").exists()
    gc_in = make_gc_input(cases[1], tmp_path / "in")
    env = _image_env(out, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [sys.executable, str(out / "entrypoint.py"), "--input", str(gc_in), "--output", str(tmp_path / "out"),
         "--device", "cpu", "--threads", "1"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = sitk.ReadImage(str(tmp_path / "out" / OUTPUT_RELPATH))
    # the same thread count on both sides: a random model has near-ties that the summation order can flip
    predictor = Predictor.from_checkpoints([three_class_ckpts[0]], device="cpu", num_threads=1)
    want = predictor.predict_case(cases[1]).mask
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(want))
    # it read only the input and wrote only the output
    assert sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()
    ) == [OUTPUT_RELPATH]
    assert not list(out.rglob("__pycache__"))


def test_the_image_converts_its_models_once_while_it_is_built(
    nodes_dataset: tuple[Path, list[Case]], three_class_ckpts: list[Path], tmp_path: Path
) -> None:
    """``entrypoint.py --prepare-cache`` (a Dockerfile step) converts the models; a case then converts none."""
    if not backend_available("openvino"):
        pytest.skip("openvino is not installed")
    _, cases = nodes_dataset
    out = tmp_path / "ctx"
    build_context(out, three_class_ckpts, sample=False)
    docker = (out / "Dockerfile").read_text()
    prepare_at = docker.index("entrypoint.py --prepare-cache")
    assert docker.index("ENV HECKTORSEG_CACHE_DIR=") < prepare_at < docker.index("\nUSER ")
    cache = tmp_path / "cache"
    env = _image_env(out, HECKTORSEG_CACHE_DIR=str(cache))
    env.pop("XDG_CACHE_HOME", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(out / "entrypoint.py"), *args],
            env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    proc = run("--prepare-cache")
    assert proc.returncode == 0, proc.stderr
    converted = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("model.xml"))
    # two models x (fp32: the whole network; bf16: features + output layer)
    assert [p.split("/")[-2] for p in converted].count("model") == 2
    assert [p.split("/")[-2] for p in converted].count("features") == 2
    assert [p.split("/")[-2] for p in converted].count("head") == 2
    gc_in = make_gc_input(cases[1], tmp_path / "in")
    for precision in ("fp32", "bf16"):
        proc = run("--input", str(gc_in), "--output", str(tmp_path / precision), "--device", "cpu",
                   "--backend", "openvino", "--precision", precision)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / precision / OUTPUT_RELPATH).is_file()
    # nothing was converted again: the same converted models, no new ones
    assert sorted(p.relative_to(cache).as_posix() for p in cache.rglob("model.xml")) == converted


def test_prepare_cache_refuses_a_folder_it_cannot_write(
    three_class_ckpts: list[Path], tmp_path: Path
) -> None:
    if not backend_available("openvino"):
        pytest.skip("openvino is not installed")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    model = load_checkpoint(three_class_ckpts[0]).model
    with pytest.raises(OutputError, match="a-file/cache: cannot write the OpenVINO cache"):
        prepare_openvino_cache([model], blocker / "cache")


def test_build_with_a_wheel_installs_it_instead_of_the_source(
    three_class_ckpts: list[Path], tmp_path: Path
) -> None:
    wheel = tmp_path / "hecktorseg-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: enough for the context
    out = tmp_path / "ctx"
    build_context(out, three_class_ckpts[:1], wheel=wheel, sample=False)
    docker = (out / "Dockerfile").read_text()
    assert f"pip install --no-deps /opt/algorithm/wheels/{wheel.name}" in docker
    assert "COPY src/" not in docker and not (out / "src").exists()
    assert (out / "wheels" / wheel.name).read_bytes() == wheel.read_bytes()
    other = tmp_path / "other-1.0-py3-none-any.whl"
    other.write_bytes(b"")
    with pytest.raises(ConfigError, match="not a hecktorseg wheel"):
        build_context(tmp_path / "ctx2", three_class_ckpts[:1], wheel=other)
    assert not (tmp_path / "ctx2").exists()
