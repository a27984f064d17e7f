"""The text files of a Grand Challenge build context: Dockerfile, entry point, run script, README.

:func:`~hecktorseg.container.build_context` writes what these templates return; they hold the
pinned PyTorch (:data:`TORCH_VERSION` from :data:`TORCH_INDEX_URL`) and the image's user and
application folder.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from hecktorseg._version import __version__

__all__ = ["TORCH_INDEX_URL", "TORCH_VERSION"]

TORCH_VERSION = "2.13.0"
"""The PyTorch version the image installs (CPU build)."""
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"
"""Where the CPU-only PyTorch wheels come from (build time only)."""
_USER, _UID = "algorithm", 1001
_APP = "/opt/algorithm"


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
`--prepare-cache` alone converts the models for OpenVINO instead (the Dockerfile does it).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = {list(model_names)!r}
OPTIONS = {options!r}


def prepare_cache() -> None:
    """Convert the models for OpenVINO into $HECKTORSEG_CACHE_DIR (run while the image is built)."""
    from hecktorseg.inference import prepare_openvino_cache
    from hecktorseg.models import load_checkpoint

    models = [load_checkpoint(HERE / name).model for name in MODELS]
    print(f"converted {{len(models)}} model(s) for OpenVINO into {{prepare_openvino_cache(models)}}")


def main(argv: list[str] | None = None) -> None:
    extra = list(sys.argv[1:] if argv is None else argv)
    if extra == ["--prepare-cache"]:
        prepare_cache()
        return
    from hecktorseg.cli import app

    args = ["container", "predict"]
    for name in MODELS:
        args += ["--model", str(HERE / name)]
    args += OPTIONS + extra
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
DEFAULT_IMAGE={shlex.quote(image)}
IMAGE="${{1:-$DEFAULT_IMAGE}}"
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
