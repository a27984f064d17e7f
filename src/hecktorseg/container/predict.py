"""``container predict``: one HECKTOR 2025/2026 Grand Challenge case, from ``/input`` to ``/output``.

The Grand Challenge interface of Task 1 (GTVp + GTVn):

* input: exactly one CT in ``INPUT/images/ct/`` and one PET in ``INPUT/images/pet/``
  (``.mha`` files with arbitrary names; ``.nii.gz``, ``.nii`` and ``.nrrd`` are accepted
  too), and optionally ``INPUT/ehr.json`` (clinical values; read and logged, not used
  by the segmentation models);
* output: ``OUTPUT/images/tumor-lymph-node-segmentation/output.mha``, a uint8 label
  map (0 background, 1 GTVp, 2 GTVn) on the input CT's grid (size, spacing, origin,
  direction), written atomically.

The case goes through exactly the code path of ``hecktorseg predict``
(:meth:`hecktorseg.inference.Predictor.predict_case` on a :class:`~hecktorseg.io.Case`
without a box table: the box is found from the PET), so the mask is identical to
what ``hecktorseg predict`` writes for the same CT and PET.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import SimpleITK as sitk

from hecktorseg.container._checks import check_challenge_outputs
from hecktorseg.container.dependencies import variant
from hecktorseg.errors import DataError
from hecktorseg.inference import MIN_GTVN_VOLUME_MM3, Predictor
from hecktorseg.io import IMAGE_SUFFIXES, Case, write_image
from hecktorseg.io.files import check_input_dir
from hecktorseg.typing import PathLike

__all__ = [
    "CT_DIR",
    "EHR_FILE",
    "OUTPUT_RELPATH",
    "PET_DIR",
    "ContainerInput",
    "ContainerResult",
    "container_predict",
    "find_container_input",
    "image_runtime",
]

logger = logging.getLogger(__name__)

CT_DIR = "images/ct"
"""Folder of the CT image, relative to the input folder."""
PET_DIR = "images/pet"
"""Folder of the PET image, relative to the input folder."""
EHR_FILE = "ehr.json"
"""Clinical values, relative to the input folder (optional)."""
OUTPUT_RELPATH = "images/tumor-lymph-node-segmentation/output.mha"
"""Where the label map goes, relative to the output folder."""


@attrs.frozen
class ContainerInput:
    """The files of one Grand Challenge case.

    Attributes
    ----------
    ct_path, pet_path
        The single CT and PET image.
    ehr
        The parsed ``ehr.json`` (``None`` if absent).
    """

    ct_path: Path
    pet_path: Path
    ehr: dict[str, Any] | None = None

    @property
    def case_id(self) -> str:
        """The CT file name without its suffix, which names the case in logs and errors."""
        name = self.ct_path.name
        for suffix in IMAGE_SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return self.ct_path.stem


@attrs.frozen
class ContainerResult:
    """What :func:`container_predict` wrote.

    Attributes
    ----------
    output_path
        ``OUTPUT/images/tumor-lymph-node-segmentation/output.mha``.
    labels
        Voxel count per label value present in the mask.
    input
        The case that was read.
    """

    output_path: Path
    labels: dict[int, int]
    input: ContainerInput


def _single_image(folder: Path, role: str) -> Path:
    if not folder.is_dir():
        raise DataError(
            f"no {role} folder",
            path=folder,
            hint=f"put exactly one {role.upper()} image (.mha) in {folder}",
        )
    found = sorted(
        p for p in folder.iterdir() if p.is_file() and any(p.name.endswith(s) for s in IMAGE_SUFFIXES)
    )
    if len(found) != 1:
        names = ", ".join(p.name for p in found[:4]) or "none"
        raise DataError(
            f"expected exactly one {role.upper()} image, found {len(found)} ({names})",
            path=folder,
            hint=f"leave exactly one {role.upper()} image ({', '.join(IMAGE_SUFFIXES)}) in this folder",
        )
    return found[0]


def image_runtime(variant_name: str = "cpu") -> tuple[str, str]:
    """The device and precision an image of ``variant_name`` runs on, chosen when it starts.

    The ``gpu`` image takes the first CUDA device with fp16 autocast when PyTorch sees one, and
    the CPU otherwise; the ``cpu`` image always the CPU. On the CPU the precision stays
    ``"auto"`` (the fastest backend and precision verified on that CPU).

    Returns
    -------
    tuple of str
        ``(device, precision)`` as ``container predict --device --precision`` take them.

    Raises
    ------
    ConfigError
        An unknown variant.
    """
    import torch

    if variant(variant_name).name == "gpu" and torch.cuda.is_available():
        return "cuda", "fp16"
    return "cpu", "auto"


def find_container_input(input_dir: PathLike = "/input") -> ContainerInput:
    """Locate the CT, PET and ``ehr.json`` of a Grand Challenge input folder.

    Raises
    ------
    DataError
        The input is not a folder (missing, a file, a FIFO, ...); ``images/ct`` or ``images/pet``
        missing, or not holding exactly one image. An ``ehr.json`` that cannot be read is
        ignored with a warning (the models do not use it).
    """
    root = check_input_dir(input_dir, what="input folder", hint="mount the case at /input or pass --input")
    ct = _single_image(root / CT_DIR, "ct")
    pet = _single_image(root / PET_DIR, "pet")
    return ContainerInput(ct_path=ct, pet_path=pet, ehr=_read_ehr(root / EHR_FILE))


_MAX_EHR_BYTES = 1 << 20
"""A larger ``ehr.json`` is not read (it holds a handful of clinical values)."""


def _read_ehr(path: Path) -> dict[str, Any] | None:
    """The clinical values of ``ehr.json``, or ``None`` (with a warning) where it cannot be used.

    The segmentation does not use them, so a bad file (not JSON, not an object, nested
    deeper than Python's recursion limit, numbers longer than Python converts, far too
    large) never stops a case.
    """
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > _MAX_EHR_BYTES:
            raise ValueError(f"larger than {_MAX_EHR_BYTES // 1024} KiB")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        text = str(exc).strip().splitlines()
        logger.warning(
            "%s: clinical values ignored (%s); they are not used by the segmentation",
            path,
            text[0][:200] if text else type(exc).__name__,
        )
        return None
    return data


def container_predict(
    input_dir: PathLike = "/input",
    output_dir: PathLike = "/output",
    *,
    models: Sequence[PathLike] | None = None,
    predictor: Predictor | None = None,
    tta: bool = False,
    device: str = "auto",
    largest_component: bool = False,
    min_gtvn_volume: float = MIN_GTVN_VOLUME_MM3,
    num_threads: int | None = None,
    backend: str = "auto",
    precision: str = "auto",
) -> ContainerResult:
    """Segment the single case of a Grand Challenge input folder and write ``output.mha``.

    Parameters
    ----------
    input_dir
        Holds ``images/ct/*.mha``, ``images/pet/*.mha`` and optionally ``ehr.json``.
    output_dir
        ``images/tumor-lymph-node-segmentation/output.mha`` is written below it.
    models
        Checkpoints (ensemble if several); ignored when ``predictor`` is given.
    predictor
        An already loaded :class:`~hecktorseg.inference.Predictor`.
    tta, device, largest_component, min_gtvn_volume, num_threads, backend, precision
        As for :meth:`Predictor.from_checkpoints` (and ``hecktorseg predict``): by default the
        fastest backend and precision verified accurate on this machine.

    Raises
    ------
    DataError
        Bad input folder (see :func:`find_container_input`), unreadable images.
    ConfigError, CheckpointError
        No or unloadable model; a model with more than 3 outputs (labels above 2).
    """
    found = find_container_input(input_dir)
    if found.ehr is not None:
        logger.info("ehr.json: %d clinical value(s) (not used by the segmentation)", len(found.ehr))
    if predictor is None:
        predictor = Predictor.from_checkpoints(
            list(models or []),
            device=device,
            tta=tta,
            largest_component=largest_component,
            min_gtvn_volume=min_gtvn_volume,
            num_threads=num_threads,
            backend=backend,
            precision=precision,
        )
    check_challenge_outputs(predictor.n_outputs)
    case = Case(found.case_id, "", found.ct_path, found.pet_path)
    prediction = predictor.predict_case(case)
    dest = Path(output_dir) / OUTPUT_RELPATH
    write_image(prediction.mask, dest)
    values, counts = np.unique(sitk.GetArrayViewFromImage(prediction.mask), return_counts=True)
    labels = {int(v): int(c) for v, c in zip(values, counts, strict=True)}
    logger.info("%s: wrote %s (voxels per label %s)", found.case_id, dest, labels)
    return ContainerResult(output_path=dest, labels=labels, input=found)
