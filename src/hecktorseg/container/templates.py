"""The text files of a Grand Challenge build context: Dockerfile, entry point, run script, README.

:func:`~hecktorseg.container.build_context` writes what these templates return; they hold the
base image (:data:`BASE_IMAGE_DIGESTS`), the image's user and application folder, and how each
variant (:data:`~hecktorseg.container.VARIANTS`) installs its pinned ``requirements.txt``.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from hecktorseg._version import __version__
from hecktorseg.container.dependencies import ImageVariant

__all__ = ["BASE_IMAGE_DIGESTS", "archive_name", "default_base_image"]

BASE_IMAGE_DIGESTS = {
    "3.11": "sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7",
}
"""Digests of ``python:<version>-slim`` the image is pinned to (tag *and* digest), per Python version.

Taken from public Dockerfiles that pin the same digest (not checked against Docker Hub from
here); a Python version without an entry gets the tag alone and a warning. Override with
``base_image=`` (``--base-image``).
"""
_USER, _UID = "algorithm", 1001
_APP = "/opt/algorithm"


def _python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def default_base_image() -> str:
    """``python:<this Python>-slim``, pinned by digest where :data:`BASE_IMAGE_DIGESTS` knows one."""
    tag = f"python:{_python_tag()}-slim"
    digest = BASE_IMAGE_DIGESTS.get(_python_tag())
    return f"{tag}@{digest}" if digest else tag


def archive_name(image: str) -> str:
    """The file that ``docker save IMAGE | gzip`` writes, as the README and ``run_sample.sh`` name it."""
    return image.replace(":", "_").replace("/", "_") + ".tar.gz"


def _dockerfile(
    n_models: int,
    wheel: str | None,
    image_variant: ImageVariant,
    *,
    offline: bool,
    base_image: str,
    index_url: str,
) -> str:
    hecktorseg_install = (
        f"RUN pip install --no-deps {_APP}/wheels/{wheel}\n"
        if wheel
        else f"COPY src/ {_APP}/src/\nENV PYTHONPATH={_APP}/src\nRUN python -m compileall -q {_APP}/src\n"
    )
    if offline:
        pip = f"pip install --no-index --find-links {_APP}/wheels -r {_APP}/requirements.txt"
        note = "# Offline build: every wheel is in the context (wheels/); `docker build` needs no network.\n"
    else:
        extra = f" --extra-index-url {index_url}" if index_url else ""
        pip = f"pip install{extra} -r {_APP}/requirements.txt"
        note = ""
    wheels = f"COPY wheels/ {_APP}/wheels/\n" if (offline or wheel) else ""
    return f"""# syntax=docker/dockerfile:1
# HECKTOR 2025/2026 Task 1 (GTVp + GTVn) submission: written by `hecktorseg container build`
# (hecktorseg {__version__}, {n_models} model(s)), variant '{image_variant.name}':
# {image_variant.description}.
# Everything is installed at build time; the image needs no network when it runs, runs as the
# non-root user '{_USER}', reads only /input and writes only /output.
FROM {base_image}

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    MPLCONFIGDIR=/tmp/matplotlib

# Every dependency pinned: {image_variant.torch_requirement} and the rest at the versions of the build.
{note}COPY requirements.txt {_APP}/requirements.txt
{wheels}RUN {pip}

# hecktorseg {__version__}
{hecktorseg_install}
COPY models/ {_APP}/models/
COPY entrypoint.py {_APP}/entrypoint.py

# The models converted for OpenVINO once, here, instead of in every case (read-only at run time).
ENV HECKTORSEG_CACHE_DIR={_APP}/cache
RUN python {_APP}/entrypoint.py --prepare-cache

RUN groupadd --system --gid {_UID} {_USER} \\
    && useradd --system --uid {_UID} --gid {_USER} --no-create-home --home-dir /nonexistent {_USER} \\
    && chmod -R a+rX {_APP} \\
    && python -c "import torch, hecktorseg; print('torch', torch.__version__, 'hecktorseg', hecktorseg.__version__)"

USER {_USER}
WORKDIR {_APP}
ENTRYPOINT ["python", "{_APP}/entrypoint.py"]
"""


_ENTRYPOINT = '''#!/usr/bin/env python3
"""Entry point of the hecktorseg Grand Challenge image (written by `hecktorseg container build`).

Runs `hecktorseg container predict` on /input -> /output with the checkpoints next to this
file, on the device that this image variant (VARIANT) chooses when it starts
(`hecktorseg.container.image_runtime`). Extra arguments are passed on (e.g. `--input DIR
--output DIR` to test on folders; `--device` and `--precision` override the choice).
`--prepare-cache` alone converts the models for OpenVINO instead (the Dockerfile does it).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = @MODELS@
OPTIONS = @OPTIONS@
VARIANT = @VARIANT@


def prepare_cache() -> None:
    """Convert the models for OpenVINO into $HECKTORSEG_CACHE_DIR (run while the image is built)."""
    from hecktorseg.inference import prepare_openvino_cache
    from hecktorseg.models import load_checkpoint

    models = [load_checkpoint(HERE / name).model for name in MODELS]
    print(f"converted {len(models)} model(s) for OpenVINO into {prepare_openvino_cache(models)}")


def arguments(extra: list[str]) -> list[str]:
    """The `hecktorseg` command line: the models, the build's options, the device chosen now, `extra`."""
    from hecktorseg.container import image_runtime

    args = ["container", "predict"]
    for name in MODELS:
        args += ["--model", str(HERE / name)]
    device, precision = image_runtime(VARIANT)
    if "--device" not in extra:
        args += ["--device", device]
    if "--precision" not in extra:
        args += ["--precision", precision]
    return args + OPTIONS + extra


def main(argv: list[str] | None = None) -> None:
    extra = list(sys.argv[1:] if argv is None else argv)
    if extra == ["--prepare-cache"]:
        prepare_cache()
        return
    from hecktorseg.cli import app

    app(args=arguments(extra), prog_name="hecktorseg")


if __name__ == "__main__":
    main()
'''


def _entrypoint(
    model_names: Sequence[str],
    tta: bool,
    largest_component: bool,
    min_gtvn_volume: float,
    variant_name: str = "cpu",
) -> str:
    options = ["--tta" if tta else "--no-tta"]
    if largest_component:
        options.append("--largest-component")
    # always written: the image must apply the post-processing it was built with, whatever the
    # default of the hecktorseg version inside
    options += ["--min-gtvn-volume", repr(float(min_gtvn_volume))]
    return (
        _ENTRYPOINT.replace("@MODELS@", repr(list(model_names)))
        .replace("@OPTIONS@", repr(options))
        .replace("@VARIANT@", repr(variant_name))
    )


def _run_sample(image: str, variant_name: str = "cpu") -> str:
    gpus = (
        "GPUS=()\nif command -v nvidia-smi >/dev/null 2>&1; then GPUS=(--gpus all); fi  # the GPU when there is one\n"
        if variant_name == "gpu"
        else "GPUS=()   # the CPU variant uses no GPU\n"
    )
    return f"""#!/usr/bin/env bash
# Build the image and run it on a sample case as Grand Challenge does: no network, 16 GB of memory,
# a read-only file system except /output (and a small /tmp).
#   ./run_sample.sh [IMAGE] [INPUT_DIR] [OUTPUT_DIR]
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
DEFAULT_IMAGE={shlex.quote(image)}
IMAGE="${{1:-$DEFAULT_IMAGE}}"
INPUT="$(cd "${{2:-$HERE/sample/input}}" && pwd)"
OUTPUT="${{3:-$HERE/sample/output}}"
{gpus}
docker build --tag "$IMAGE" "$HERE"
mkdir -p "$OUTPUT"
chmod 777 "$OUTPUT"   # the image runs as the non-root user {_USER} (uid {_UID})
OUTPUT="$(cd "$OUTPUT" && pwd)"
time docker run --rm ${{GPUS[@]+"${{GPUS[@]}}"}} \\
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


def _readme(
    image: str,
    model_names: Sequence[str],
    tta: bool,
    wheel: str | None,
    sample: bool,
    image_variant: ImageVariant,
    offline: bool,
) -> str:
    models = "\n".join(f"  - `{m}`" for m in model_names)
    source = f"the wheel `wheels/{wheel}`" if wheel else "the source in `src/hecktorseg`"
    sample_text = (
        "`sample/input/` holds one synthetic case (phantom PET/CT, not patient data) in the Grand "
        "Challenge layout."
        if sample
        else "No sample case was written (`--no-sample`); pass an input folder to `run_sample.sh`."
    )
    run_here = (
        f"pip install --no-deps wheels/{wheel}\npython entrypoint.py --input sample/input --output /tmp/out"
        if wheel
        else "PYTHONPATH=src python entrypoint.py --input sample/input --output /tmp/out"
    )
    device = (
        "a CUDA GPU when one is visible (fp16 autocast), else the CPU"
        if image_variant.name == "gpu"
        else "the CPU (OpenVINO; bf16 where the CPU has native bf16)"
    )
    offline_text = " The wheels are in `wheels/`: `docker build` needs no network." if offline else ""
    mirrors = ", with test-time mirroring (8 flips)" if tta else ""
    return f"""# hecktorseg submission image (HECKTOR 2025/2026 Task 1: GTVp + GTVn)

Written by `hecktorseg container build` (hecktorseg {__version__}), variant `{image_variant.name}`:
{image_variant.description}.

- Models ({len(model_names)}, probabilities averaged per class{mirrors}):
{models}
- `{image_variant.torch_requirement}` and every other dependency pinned in `requirements.txt`;
  hecktorseg {__version__} from {source}.{offline_text}
- Runs on {device}: chosen when the container starts.
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

Without Docker, the same entry point runs on folders: from this folder, in a Python
environment with `requirements.txt` installed (`pip install -r requirements.txt`):

```bash
{run_here}
```

## Upload

```bash
docker save {image} | gzip -c > {archive_name(image)}
```

Upload the `.tar.gz` as a new container image of your algorithm on Grand Challenge
(Algorithm → Containers → Upload a container). The organisers' limits
(https://hecktor25.grand-challenge.org/submission-instructions): 10 minutes per case,
16 GB of memory, an image of at most 10 GB; a GPU (T4) may or may not be given.
"""
