"""What the Grand Challenge image installs: every dependency pinned, and the wheels for an offline build.

:func:`pinned_requirements` walks the installed distributions from hecktorseg's run-time
dependencies down (each distribution's ``Requires-Dist``, with markers evaluated for this
Python and platform) and pins every one to the version installed here, PyTorch to
:data:`TORCH_VERSION` of the chosen :data:`VARIANTS` entry. :func:`vendor_wheels`
downloads exactly those wheels into the build context, so that ``docker build`` needs no
network (``pip install --no-index --find-links``).
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import re
import subprocess
import sys
from pathlib import Path

import attrs

from hecktorseg.errors import ConfigError, DataError

__all__ = [
    "DEPENDENCIES",
    "TORCH_INDEX_URL",
    "TORCH_VERSION",
    "VARIANTS",
    "ImageVariant",
    "pinned_requirements",
    "vendor_wheels",
]

logger = logging.getLogger(__name__)

TORCH_VERSION = "2.13.0"
"""The PyTorch version every image installs (``+cpu`` build for ``cpu``, CUDA build for ``gpu``)."""
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"
"""Where the CPU-only PyTorch wheels come from (build time only)."""

DEPENDENCIES = (
    "torch",
    "SimpleITK",
    "numpy",
    "scipy",
    "attrs",
    "typer",
    "PyYAML",
    "rich",
    "matplotlib",
    "openvino",
)
"""hecktorseg's run-time dependencies (``[project] dependencies`` of ``pyproject.toml``, no extras)."""


@attrs.frozen
class ImageVariant:
    """One kind of Grand Challenge image.

    Attributes
    ----------
    name
        ``"cpu"`` or ``"gpu"``.
    torch_requirement
        The PyTorch line of ``requirements.txt``.
    torch_index_url
        The extra package index that serves that PyTorch build (``""``: PyPI alone).
    description
        One line for the Dockerfile and the README.
    """

    name: str
    torch_requirement: str
    torch_index_url: str
    description: str


VARIANTS: dict[str, ImageVariant] = {
    "cpu": ImageVariant(
        "cpu",
        f"torch=={TORCH_VERSION}+cpu",
        TORCH_INDEX_URL,
        "CPU-only PyTorch (no CUDA libraries): small, for CPU-only phases and local runs",
    ),
    "gpu": ImageVariant(
        "gpu",
        f"torch=={TORCH_VERSION}",
        "",
        "CUDA PyTorch from PyPI (its CUDA libraries pinned by the torch wheel): the GPU when "
        "one is given (fp16 autocast), the CPU otherwise",
    ),
}
"""The image variants ``container build --variant`` offers."""

# Installed alongside a CUDA torch only (pinned exactly by torch's own wheel metadata).
_CUDA_ONLY = re.compile(r"^(nvidia-.*|triton|cuda-.*)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str | None:
    """The distribution a ``Requires-Dist`` line needs here, or ``None`` if its marker excludes it."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    return req.name


def variant(name: str) -> ImageVariant:
    """The :data:`VARIANTS` entry called ``name`` (a clear error otherwise)."""
    if name not in VARIANTS:
        raise ConfigError(
            f"unknown image variant {name!r}", hint="use variant_name='cpu' or variant_name='gpu'"
        )
    return VARIANTS[name]


def pinned_requirements(variant_name: str = "cpu") -> list[str]:
    """Every run-time dependency of the image as ``name==version``, sorted (PyTorch included).

    The closure of :data:`DEPENDENCIES` over the installed distributions' requirements, each
    pinned to the version installed here; PyTorch itself is pinned to the variant's build of
    :data:`TORCH_VERSION`, and CUDA-only packages are left to the CUDA torch wheel, which pins
    them exactly.

    Raises
    ------
    ConfigError
        A dependency is not installed here (so its version is unknown), or an unknown variant.
    """
    chosen = variant(variant_name)
    pins: dict[str, str] = {}
    todo = list(DEPENDENCIES)
    while todo:
        name = todo.pop()
        key = _canonical(name)
        if key in pins or _CUDA_ONLY.match(key):
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise ConfigError(
                f"{name} is not installed here, so the image cannot pin its version",
                hint=f"install it first (pip install {name}) and build again",
            ) from None
        pins[key] = chosen.torch_requirement if key == "torch" else f"{key}=={dist.version}"
        if key == "torch" and dist.version.split("+")[0] != TORCH_VERSION:
            logger.warning(
                "torch %s is installed here, the image gets %s: its dependencies are pinned "
                "to the versions installed with %s",
                dist.version,
                TORCH_VERSION,
                dist.version,
            )
        todo += [n for r in dist.requires or [] if (n := _requirement_name(r)) is not None]
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        logger.warning(
            "pins resolved on %s/%s, the image is linux/x86_64: check requirements.txt",
            sys.platform,
            platform.machine(),
        )
    return sorted(pins.values())


def vendor_wheels(requirements: Path, dest: Path, *, index_url: str) -> list[Path]:
    """Download the wheels of ``requirements`` (and of what they need) into ``dest`` with pip.

    Parameters
    ----------
    requirements
        A fully pinned ``requirements.txt``.
    dest
        The wheel folder of the build context.
    index_url
        An extra package index for PyTorch (``""``: only the indexes pip is configured with).

    Returns
    -------
    list of Path
        The wheels in ``dest``, sorted.

    Raises
    ------
    DataError
        pip could not download them (its last message is in the error).
    """
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--dest", str(dest)]
    command += ["--requirement", str(requirements), "--disable-pip-version-check", "--quiet"]
    if index_url:
        command += ["--extra-index-url", index_url]
    logger.info("downloading the image's wheels into %s", dest)
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip() and "WARNING" not in line]
        raise DataError(
            f"pip could not download the wheels ({lines[-1].strip() if lines else 'no message'})",
            path=requirements,
            hint="check the network or the index (torch_index_url=), or build without offline=True",
        )
    return sorted(dest.glob("*.whl"))
