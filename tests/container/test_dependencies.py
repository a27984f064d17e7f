"""The image's pinned requirements, its variants and the device it chooses, and an offline build.

The last test stands in for ``docker build`` (no Docker daemon in the tests): it builds an
offline context, installs a fresh virtual environment from that context's
``requirements.txt`` and vendored wheels alone (``pip --isolated --no-index``, nothing else
visible), converts the models as the Dockerfile does and runs the sample case.
"""

from __future__ import annotations

import os
import re
import subprocess
import venv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import torch

import hecktorseg.cli
from hecktorseg.container import (
    DEPENDENCIES,
    OUTPUT_RELPATH,
    TORCH_VERSION,
    VARIANTS,
    build_context,
    image_runtime,
    pinned_requirements,
)
from hecktorseg.errors import ConfigError
from hecktorseg.inference import Predictor
from hecktorseg.io import Case

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]).lower()


def test_dependencies_are_the_packages_run_time_dependencies() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(_name(d) for d in project["dependencies"]) == sorted(_name(d) for d in DEPENDENCIES)


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_every_requirement_is_pinned_and_openvino_is_there(name: str) -> None:
    lines = pinned_requirements(name)
    assert lines == sorted(lines) and len(lines) == len({_name(r) for r in lines})
    assert all(re.fullmatch(r"[a-z0-9-]+==[\w.+!-]+", line) for line in lines), lines
    pinned = {_name(r) for r in lines}
    assert {_name(d) for d in DEPENDENCIES} <= pinned
    torch_line = next(line for line in lines if line.startswith("torch=="))
    assert torch_line == (f"torch=={TORCH_VERSION}+cpu" if name == "cpu" else f"torch=={TORCH_VERSION}")
    # no CUDA package: the CUDA torch wheel pins its own
    assert not any(p.startswith("nvidia-") or p == "triton" for p in pinned)


def test_an_unknown_variant_is_a_clear_error(three_class_ckpts: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown image variant 'tpu'"):
        build_context(tmp_path / "ctx", three_class_ckpts[:1], variant_name="tpu")
    assert not (tmp_path / "ctx").exists()


@pytest.mark.parametrize("cuda", [True, False])
def test_the_image_chooses_its_device_when_it_starts(monkeypatch: pytest.MonkeyPatch, cuda: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert image_runtime("gpu") == (("cuda", "fp16") if cuda else ("cpu", "auto"))
    assert image_runtime("cpu") == ("cpu", "auto")  # the CPU image never takes a GPU


def _load_entrypoint(path: Path) -> Any:
    namespace: dict[str, Any] = {"__name__": "gc_entrypoint", "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # the generated script, as a module
    return namespace


@pytest.mark.parametrize("cuda", [True, False])
def test_gpu_variant_context_and_its_entry_point(
    three_class_ckpts: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuda: bool
) -> None:
    out = tmp_path / "ctx"
    build_context(out, three_class_ckpts[:1], variant_name="gpu", sample=False, tta=True)
    docker = (out / "Dockerfile").read_text()
    assert "variant 'gpu'" in docker and "download.pytorch.org/whl/cpu" not in docker
    assert f"torch=={TORCH_VERSION}\n" in (out / "requirements.txt").read_text()
    assert "--gpus all" in (out / "run_sample.sh").read_text()
    calls: list[list[str]] = []
    monkeypatch.setattr(hecktorseg.cli, "app", lambda args, prog_name: calls.append(args))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    entry = _load_entrypoint(out / "entrypoint.py")
    entry["main"](["--input", "in", "--output", "out"])
    (args,) = calls
    device, precision = ("cuda", "fp16") if cuda else ("cpu", "auto")
    assert args[args.index("--device") + 1] == device and args[args.index("--precision") + 1] == precision
    assert args[-4:] == ["--input", "in", "--output", "out"] and "--tta" in args
    # an explicit choice wins over the image's
    entry["main"](["--device", "cpu", "--precision", "fp32"])
    assert calls[1].count("--device") == 1 and calls[1][-4:] == ["--device", "cpu", "--precision", "fp32"]


def test_cpu_variant_never_passes_a_gpu_to_docker(three_class_ckpts: list[Path], tmp_path: Path) -> None:
    build_context(tmp_path / "ctx", three_class_ckpts[:1], sample=False)
    script = (tmp_path / "ctx" / "run_sample.sh").read_text()
    assert "--gpus" not in script
    proc = subprocess.run(
        ["bash", "-n", str(tmp_path / "ctx" / "run_sample.sh")], capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert set(VARIANTS) == {"cpu", "gpu"}


@pytest.mark.slow
def test_offline_context_installs_into_a_fresh_venv_and_runs_the_sample(
    three_class_ckpts: list[Path], tmp_path: Path
) -> None:
    """``docker build`` stand-in: a fresh venv from the context's own requirements and wheels only."""
    out = tmp_path / "ctx"
    # "" = the package indexes pip is configured with (this machine's mirror), as a user with a proxy would
    build_context(out, three_class_ckpts, offline=True, torch_index_url="", tta=False)
    docker = (out / "Dockerfile").read_text()
    assert "--no-index --find-links /opt/algorithm/wheels -r /opt/algorithm/requirements.txt" in docker
    assert "COPY wheels/" in docker
    wheels = {_name(p.name.split("-")[0]) for p in (out / "wheels").glob("*.whl")}
    assert {_name(r) for r in (out / "requirements.txt").read_text().split()} <= wheels

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    install = subprocess.run(
        [str(python), "-m", "pip", "--isolated", "install", "--quiet", "--no-index",
         "--find-links", str(out / "wheels"), "-r", str(out / "requirements.txt")],
        env=clean, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    image_env = {**clean, "PYTHONPATH": str(out / "src"), "PYTHONDONTWRITEBYTECODE": "1",
                 "HECKTORSEG_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}  # fmt: skip

    def entrypoint(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), str(out / "entrypoint.py"), *args],
            env=image_env, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip

    prepared = entrypoint("--prepare-cache")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    assert "converted 2 model(s) for OpenVINO" in prepared.stdout
    ran = entrypoint(
        "--input", str(out / "sample" / "input"), "--output", str(tmp_path / "gc-out"), "--threads", "1"
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    got = sitk.ReadImage(str(tmp_path / "gc-out" / OUTPUT_RELPATH))
    sample = out / "sample" / "input" / "images"
    case = Case("SAMPLE-001", "", sample / "ct" / "sample-ct.mha", sample / "pet" / "sample-pet.mha")
    ct = sitk.ReadImage(str(case.ct_path))
    assert got.GetSize() == ct.GetSize() and got.GetPixelID() == sitk.sitkUInt8
    # the same mask as this environment's predictor with the backend the image chose on this CPU
    want = Predictor.from_checkpoints(three_class_ckpts, device="cpu", num_threads=1).predict_case(case).mask
    assert set(np.unique(sitk.GetArrayFromImage(got))) <= {0, 1, 2}
    np.testing.assert_array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(want))
