"""``container build``: a ready Docker build context for a HECKTOR 2025/2026 Grand Challenge submission.

:func:`build_context` writes a folder that ``docker build`` turns into the submission
image::

    OUT/
      Dockerfile          CPU PyTorch (pinned, from the PyTorch CPU index) + this hecktorseg
      .dockerignore
      requirements.txt    hecktorseg's dependencies pinned to the versions installed here
      src/hecktorseg/     this hecktorseg's source (or wheels/<wheel> with ``wheel=``)
      models/model_K.pt   the checkpoints (an ensemble if several)
      entrypoint.py       runs ``hecktorseg container predict`` on /input → /output
      run_sample.sh       builds the image and runs it on sample/input (docker run --network none)
      sample/input/       one synthetic case in the Grand Challenge layout (unless ``sample=False``)
      build-info.json     versions, checkpoints (SHA-256) and settings
      README.md           how to test, save and upload the image

Everything the image needs is installed while it is *built*; at run time it needs no
network, runs as the non-root user ``algorithm`` (uid 1001), reads only ``/input`` and
writes only ``/output`` (Python writes no byte code, matplotlib is not imported).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import attrs

import hecktorseg
from hecktorseg._version import __version__
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.io import atomic_write_text, write_image
from hecktorseg.typing import PathLike

__all__ = [
    "BUILD_FILES",
    "TORCH_INDEX_URL",
    "TORCH_VERSION",
    "BuildResult",
    "build_context",
    "pinned_requirements",
]

logger = logging.getLogger(__name__)

TORCH_VERSION = "2.13.0"
"""The PyTorch version the image installs (CPU build)."""
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"
"""Where the CPU-only PyTorch wheels come from (build time only)."""
BUILD_FILES = (
    "Dockerfile",
    ".dockerignore",
    "requirements.txt",
    "entrypoint.py",
    "run_sample.sh",
    "build-info.json",
    "README.md",
)
"""Files every build context holds (besides the models, the package and the sample)."""

_DEPENDENCIES = ("numpy", "SimpleITK", "scipy", "attrs", "typer", "PyYAML", "rich", "matplotlib")
_USER, _UID = "algorithm", 1001
_APP = "/opt/algorithm"


@attrs.frozen
class BuildResult:
    """What :func:`build_context` wrote.

    Attributes
    ----------
    out_dir
        The build context.
    models
        The checkpoints inside it.
    files
        Every file written, relative to ``out_dir`` (sorted).
    """

    out_dir: Path
    models: tuple[Path, ...]
    files: tuple[str, ...]


def pinned_requirements() -> list[str]:
    """``name==version`` of hecktorseg's run-time dependencies (torch excluded) as installed here."""
    lines = []
    for name in _DEPENDENCIES:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            logger.warning("%s is not installed here; the image gets its newest version", name)
            lines.append(name)
    return lines


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _dockerfile(n_models: int, wheel: str | None) -> str:
    install = (
        f"COPY wheels/ {_APP}/wheels/\nRUN pip install --no-deps {_APP}/wheels/{wheel}\n"
        if wheel
        else f"COPY src/ {_APP}/src/\nENV PYTHONPATH={_APP}/src\nRUN python -m compileall -q {_APP}/src\n"
    )
    return f"""# syntax=docker/dockerfile:1
# HECKTOR 2025/2026 Task 1 (GTVp + GTVn) submission: written by `hecktorseg container build`
# (hecktorseg {__version__}, {n_models} model(s)). Everything is installed at build time; the
# image needs no network when it runs, runs as the non-root user '{_USER}', reads only /input
# and writes only /output.
FROM python:{_python_tag()}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    MPLCONFIGDIR=/tmp/matplotlib

# CPU-only PyTorch, pinned (no CUDA libraries: the image stays small and runs on CPU-only hosts).
RUN pip install --index-url {TORCH_INDEX_URL} torch=={TORCH_VERSION}
COPY requirements.txt {_APP}/requirements.txt
RUN pip install -r {_APP}/requirements.txt

# hecktorseg {__version__}
{install}
COPY models/ {_APP}/models/
COPY entrypoint.py {_APP}/entrypoint.py
RUN groupadd --system --gid {_UID} {_USER} \\
    && useradd --system --uid {_UID} --gid {_USER} --no-create-home --home-dir /nonexistent {_USER} \\
    && chmod -R a+rX {_APP} \\
    && python -c "import torch, hecktorseg; print('torch', torch.__version__, 'hecktorseg', hecktorseg.__version__)"

USER {_USER}
WORKDIR {_APP}
ENTRYPOINT ["python", "{_APP}/entrypoint.py"]
"""


def _entrypoint(
    model_names: Sequence[str], tta: bool, largest_component: bool, min_gtvn_volume: float
) -> str:
    options = ["--tta" if tta else "--no-tta"]
    if largest_component:
        options.append("--largest-component")
    if min_gtvn_volume > 0:
        options += ["--min-gtvn-volume", repr(float(min_gtvn_volume))]
    return f'''#!/usr/bin/env python3
"""Entry point of the hecktorseg Grand Challenge image (written by `hecktorseg container build`).

Runs `hecktorseg container predict` on /input → /output with the checkpoints next to this
file. Extra arguments are passed on (e.g. `--input DIR --output DIR` to test on folders).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {list(model_names)!r}
OPTIONS = {options!r}


def main(argv: list[str] | None = None) -> None:
    from hecktorseg.cli import app

    args = ["container", "predict"]
    for name in MODELS:
        args += ["--model", str(HERE / name)]
    args += OPTIONS + list(sys.argv[1:] if argv is None else argv)
    app(args=args, prog_name="hecktorseg")


if __name__ == "__main__":
    main()
'''


def _run_sample(image: str) -> str:
    return f"""#!/usr/bin/env bash
# Build the image and run it on a sample case as Grand Challenge does: no network, 16 GB of memory,
# a read-only file system except /output (and a small /tmp).
#   ./run_sample.sh [IMAGE] [INPUT_DIR] [OUTPUT_DIR]
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
IMAGE="${{1:-{image}}}"
INPUT="$(cd "${{2:-$HERE/sample/input}}" && pwd)"
OUTPUT="${{3:-$HERE/sample/output}}"

docker build --tag "$IMAGE" "$HERE"
mkdir -p "$OUTPUT"
chmod 777 "$OUTPUT"   # the image runs as the non-root user {_USER} (uid {_UID})
OUTPUT="$(cd "$OUTPUT" && pwd)"
time docker run --rm \\
    --network none \\
    --memory 16g --memory-swap 16g \\
    --shm-size 128m \\
    --read-only --tmpfs /tmp \\
    --volume "$INPUT":/input:ro \\
    --volume "$OUTPUT":/output \\
    "$IMAGE"
ls -l "$OUTPUT/images/tumor-lymph-node-segmentation/output.mha"
echo "save for upload: docker save $IMAGE | gzip -c > $(echo "$IMAGE" | tr ':/' '__').tar.gz"
"""


def _readme(image: str, model_names: Sequence[str], tta: bool, wheel: str | None, sample: bool) -> str:
    models = "\n".join(f"- `{m}`" for m in model_names)
    source = f"the wheel `wheels/{wheel}`" if wheel else "the source in `src/hecktorseg`"
    sample_text = (
        "`sample/input/` holds one synthetic case (phantom PET/CT, not patient data) in the Grand "
        "Challenge layout."
        if sample
        else "No sample case was written (`--no-sample`); pass an input folder to `run_sample.sh`."
    )
    return f"""# hecktorseg submission image (HECKTOR 2025/2026 Task 1: GTVp + GTVn)

Written by `hecktorseg container build` (hecktorseg {__version__}).

- Models ({len(model_names)}, probabilities averaged per class{", with test-time mirroring (8 flips)" if tta else ""}):
{models}
- PyTorch {TORCH_VERSION}, CPU build; hecktorseg {__version__} from {source};
  other dependencies pinned in `requirements.txt`.
- Input: `/input/images/ct/*.mha`, `/input/images/pet/*.mha` (exactly one each), `/input/ehr.json` (optional).
- Output: `/output/images/tumor-lymph-node-segmentation/output.mha`, uint8 labels
  0 background, 1 GTVp, 2 GTVn on the input CT grid.
- No network at run time, non-root user `{_USER}` (uid {_UID}), reads only `/input`, writes only `/output`.

## Test

{sample_text}

```bash
./run_sample.sh {image}          # docker build, then docker run --network none on sample/input
./run_sample.sh {image} /path/to/case/input /tmp/out
```

Without Docker, the same entry point runs on folders:

```bash
python entrypoint.py --input sample/input --output /tmp/out
```

## Upload

```bash
docker save {image} | gzip -c > {image.replace(":", "_").replace("/", "_")}.tar.gz
```

Upload the `.tar.gz` as a new container image of your algorithm on Grand Challenge
(Algorithm → Containers → Upload a container). Limits of the organisers: 10 minutes per
case, 16 GB of memory, image at most 10 GB; a GPU (T4) may or may not be given, so the image
runs on the CPU (a CUDA device is used when one is visible only with a CUDA build of PyTorch).
"""


def _write_sample(dest: Path, seed: int) -> None:
    from hecktorseg.data.synthetic import make_phantom

    phantom = make_phantom("SAMPLE-001", seed=seed, with_nodes=True)
    write_image(phantom.ct, dest / "images" / "ct" / "sample-ct.mha")
    write_image(phantom.pet, dest / "images" / "pet" / "sample-pet.mha")
    ehr = {"PatientID": "SAMPLE-001", "Age": 61, "Gender": "M", "HPV Status": None}
    atomic_write_text(dest / "ehr.json", json.dumps(ehr, indent=2) + "\n")


def build_context(
    out_dir: PathLike,
    models: Sequence[PathLike],
    *,
    tta: bool = False,
    largest_component: bool = False,
    min_gtvn_volume: float = 0.0,
    wheel: PathLike | None = None,
    sample: bool = True,
    image: str | None = None,
    force: bool = False,
) -> BuildResult:
    """Write a Docker build context for a Grand Challenge submission (see the module docstring).

    Parameters
    ----------
    out_dir
        The build context folder; it must be absent or empty unless ``force``.
    models
        Checkpoints (one, or several for an ensemble). They are loaded once here to
        check that they are readable and agree on preprocessing.
    tta
        Test-time mirroring in the image.
    largest_component, min_gtvn_volume
        Post-processing in the image (as ``hecktorseg predict``).
    wheel
        A hecktorseg wheel to install instead of this source tree.
    sample
        Write one synthetic case to ``sample/input``.
    image
        Image tag used by ``run_sample.sh`` and the README (default ``hecktorseg-gc:<version>``).
    force
        Replace an existing non-empty ``out_dir``.

    Raises
    ------
    ConfigError
        No model, ``out_dir`` not empty, a wheel that is not a ``hecktorseg`` wheel.
    CheckpointError
        A checkpoint cannot be loaded.
    """
    from hecktorseg.inference import Predictor

    image = image or f"hecktorseg-gc:{__version__}"
    paths = [Path(m) for m in models]
    if not paths:
        raise ConfigError("no checkpoint given", hint="pass at least one checkpoint path in models")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ConfigError(
            "output folder exists and is not empty",
            path=out,
            hint="choose a new folder or pass force=True to replace it",
        )
    wheel_path = Path(wheel) if wheel is not None else None
    if wheel_path is not None and (
        not wheel_path.is_file()
        or not wheel_path.name.startswith("hecktorseg-")
        or wheel_path.suffix != ".whl"
    ):
        raise ConfigError(
            "not a hecktorseg wheel",
            path=wheel_path,
            hint="build one with `python -m build` (hecktorseg-*.whl)",
        )
    predictor = Predictor.from_checkpoints(paths, device="cpu", tta=tta, min_gtvn_volume=min_gtvn_volume)
    n_out = {int(getattr(m, "hparams", {}).get("n_classes", 0) or 0) for m in predictor.models}
    if n_out == {1}:
        logger.warning("binary model(s): the image writes labels 0/1 only (no GTVn)")

    staging = out.with_name(f".{out.name}.building")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        names = []
        for k, path in enumerate(paths):
            name = f"models/model_{k}.pt"
            (staging / "models").mkdir(exist_ok=True)
            shutil.copyfile(path, staging / name)
            names.append(name)
        if wheel_path is not None:
            (staging / "wheels").mkdir()
            shutil.copyfile(wheel_path, staging / "wheels" / wheel_path.name)
        else:
            source = Path(hecktorseg.__file__).resolve().parent
            shutil.copytree(
                source, staging / "src" / "hecktorseg", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        wheel_name = wheel_path.name if wheel_path is not None else None
        files = {
            "Dockerfile": _dockerfile(len(paths), wheel_name),
            ".dockerignore": "sample/output/\n**/__pycache__/\n*.pyc\n",
            "requirements.txt": "\n".join(pinned_requirements()) + "\n",
            "entrypoint.py": _entrypoint(names, tta, largest_component, min_gtvn_volume),
            "run_sample.sh": _run_sample(image),
            "README.md": _readme(image, names, tta, wheel_name, sample),
            "build-info.json": json.dumps(
                {
                    "hecktorseg_version": __version__,
                    "torch": f"torch=={TORCH_VERSION} ({TORCH_INDEX_URL})",
                    "python": _python_tag(),
                    "image": image,
                    "tta": tta,
                    "largest_component": largest_component,
                    "min_gtvn_volume_mm3": min_gtvn_volume,
                    "models": [
                        {"file": n, "source": str(p), "sha256": _sha256(p)}
                        for n, p in zip(names, paths, strict=True)
                    ],
                },
                indent=2,
            )
            + "\n",
        }
        for name, text in files.items():
            atomic_write_text(staging / name, text)
        for name in ("entrypoint.py", "run_sample.sh"):
            (staging / name).chmod(0o755)
        if sample:
            _write_sample(staging / "sample" / "input", seed=0)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"cannot write the build context ({exc})", path=out) from None
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    logger.info("build context for %d model(s) in %s", len(paths), out)
    return BuildResult(out_dir=out, models=tuple(out / n for n in names), files=tuple(written))
