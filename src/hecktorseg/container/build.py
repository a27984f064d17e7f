"""``container build``: a ready Docker build context for a HECKTOR 2025/2026 Grand Challenge submission.

:func:`build_context` writes a folder that ``docker build`` turns into the submission
image::

    OUT/
      Dockerfile          python slim (tag + digest), the pinned requirements, this hecktorseg
      .dockerignore
      requirements.txt    every dependency pinned: PyTorch of the variant (CPU or CUDA
                          build), the rest at the versions installed here
      src/hecktorseg/     this hecktorseg's source (or wheels/<wheel> with ``wheel=``)
      wheels/             with ``offline=True``: every wheel, so ``docker build`` needs no network
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
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import attrs

import hecktorseg
from hecktorseg._version import __version__
from hecktorseg.container._checks import check_challenge_outputs, check_context_folder, check_image_tag
from hecktorseg.container.dependencies import (
    pinned_requirements,
    variant,
    vendor_wheels,
)
from hecktorseg.container.templates import (
    BASE_IMAGE_DIGESTS,
    _dockerfile,
    _entrypoint,
    _python_tag,
    _readme,
    _run_sample,
    default_base_image,
)
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.inference import MIN_GTVN_VOLUME_MM3
from hecktorseg.io import atomic_write_text, write_image
from hecktorseg.typing import PathLike

__all__ = ["BUILD_FILES", "BuildResult", "build_context"]

logger = logging.getLogger(__name__)

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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


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
    min_gtvn_volume: float = MIN_GTVN_VOLUME_MM3,
    wheel: PathLike | None = None,
    sample: bool = True,
    image: str | None = None,
    variant_name: str = "cpu",
    offline: bool = False,
    torch_index_url: str | None = None,
    base_image: str | None = None,
    force: bool = False,
) -> BuildResult:
    """Write a Docker build context for a Grand Challenge submission (see :mod:`hecktorseg.container.build`).

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
    variant_name
        ``"cpu"`` (CPU-only PyTorch) or ``"gpu"`` (CUDA PyTorch; the image uses a GPU with fp16
        autocast when it is given one, the CPU otherwise): see :data:`VARIANTS`.
    offline
        Download every wheel into ``wheels/`` now (with pip), so that ``docker build`` needs no
        network (``pip install --no-index --find-links``).
    torch_index_url
        The package index of the variant's PyTorch build (default: the variant's; ``""``: only
        the indexes pip is configured with, e.g. a local mirror).
    base_image
        The ``FROM`` image (default ``python:<this Python>-slim`` pinned by digest, see
        :data:`BASE_IMAGE_DIGESTS`).
    force
        Replace an existing non-empty ``out_dir``.

    Raises
    ------
    ConfigError
        No model, ``out_dir`` not empty, the current folder (or above it) or holding an input;
        a wheel that is not a ``hecktorseg`` wheel; an image name outside Docker's grammar.
    CheckpointError
        A checkpoint cannot be loaded.
    """
    from hecktorseg.inference import Predictor

    image = check_image_tag(image or f"hecktorseg-gc:{__version__}")
    chosen = variant(variant_name)
    index_url = chosen.torch_index_url if torch_index_url is None else torch_index_url
    requirements = pinned_requirements(chosen.name)
    if base_image is None:
        base_image = default_base_image()
        if "@sha256:" not in base_image:
            logger.warning(
                "no known digest of %s (known: Python %s): the base image is pinned by tag only; "
                "pass base_image='%s@sha256:...'",
                base_image,
                ", ".join(sorted(BASE_IMAGE_DIGESTS)),
                base_image,
            )
    paths = [Path(m) for m in models]
    if not paths:
        raise ConfigError("no checkpoint given", hint="pass at least one checkpoint path in models")
    out = Path(out_dir)
    check_context_folder(out, [*paths, *([Path(wheel)] if wheel is not None else [])])
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
    check_challenge_outputs(predictor.n_outputs)

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
            "Dockerfile": _dockerfile(
                len(paths), wheel_name, chosen, offline=offline, base_image=base_image, index_url=index_url
            ),
            ".dockerignore": "sample/output/\n**/__pycache__/\n*.pyc\n",
            "requirements.txt": "\n".join(requirements) + "\n",
            "entrypoint.py": _entrypoint(names, tta, largest_component, min_gtvn_volume, chosen.name),
            "run_sample.sh": _run_sample(image, chosen.name),
            "README.md": _readme(image, names, tta, wheel_name, sample, chosen, offline),
            "build-info.json": json.dumps(
                {
                    "hecktorseg_version": __version__,
                    "variant": chosen.name,
                    "torch": f"{chosen.torch_requirement} ({index_url or 'the configured pip indexes'})",
                    "base_image": base_image,
                    "offline": offline,
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
        if offline:
            vendor_wheels(staging / "requirements.txt", staging / "wheels", index_url=index_url)
        if sample:
            _write_sample(staging / "sample" / "input", seed=0)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"cannot write the build context ({exc})", path=out) from None
    except DataError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    logger.info("build context for %d model(s) in %s", len(paths), out)
    return BuildResult(out_dir=out, models=tuple(out / n for n in names), files=tuple(written))
