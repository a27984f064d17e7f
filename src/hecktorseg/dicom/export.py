"""``dicom export``: label maps back to the clinic as RTSTRUCT or DICOM-SEG on each patient's CT series.

For each ``<PID>.nii.gz`` in the labels folder (flat, as ``predict`` writes them, or
``<PID>/<PID>.nii.gz`` as in a HECKTOR 2025 dataset), the CT series of that patient is found
in the DICOM folder by the import's rules, the label map's grid is checked against it, and
``OUT/<PID>_RTSTRUCT.dcm`` or ``OUT/<PID>_SEG.dcm`` is written.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Literal

import numpy as np
import pydicom

from hecktorseg.dicom.importer import output_name
from hecktorseg.dicom.index import DicomIndex, index_dicom
from hecktorseg.dicom.rtstruct_write import labels_to_rtstruct
from hecktorseg.dicom.seg_write import labels_to_seg
from hecktorseg.dicom.select import select_series
from hecktorseg.dicom.volume import load_series
from hecktorseg.errors import ConfigError, DataError, GeometryError, HecktorsegError
from hecktorseg.io import Geometry, atomic_path, ensure_output_dir, image_to_array, read_image
from hecktorseg.reports import BatchReport
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["EXPORT_FORMATS", "export_labels", "export_patient", "find_label_maps"]

logger = logging.getLogger(__name__)

ExportFormat = Literal["rtstruct", "seg"]
EXPORT_FORMATS: dict[str, str] = {"rtstruct": "_RTSTRUCT.dcm", "seg": "_SEG.dcm"}
"""Format → output file suffix after the patient folder name."""


def find_label_maps(labels_dir: PathLike) -> dict[str, Path]:
    """``<PID>.nii.gz`` files directly in ``labels_dir`` or as ``<PID>/<PID>.nii.gz``, by PID."""
    root = Path(labels_dir)
    found: dict[str, Path] = {}
    for path in sorted(root.glob("*.nii.gz")):
        found[path.name[: -len(".nii.gz")]] = path
    for path in sorted(root.glob("*/*.nii.gz")):
        stem = path.name[: -len(".nii.gz")]
        if stem == path.parent.name:
            found.setdefault(stem, path)
    return found


def export_patient(
    label_path: PathLike,
    pid: str,
    index: DicomIndex,
    fmt: ExportFormat,
    out_path: PathLike,
    *,
    split_nodes: bool = False,
) -> Path:
    """Write one patient's label map as an RTSTRUCT or DICOM-SEG on its CT series.

    Raises
    ------
    DataError, GeometryError
        No such patient in the DICOM folder, or the label map is not on the CT's grid.
    """
    if pid not in index.series:
        raise DataError(f"patient {pid}: not in the DICOM folder {index.root}", path=label_path)
    choice = select_series(pid, index.series[pid], need_pet=False)
    ct = load_series(choice.ct, f"patient {pid}: CT series {choice.ct.uid}")
    if ct.resampled:
        raise GeometryError(
            f"patient {pid}: the CT series has uneven spacing; its slices cannot carry the labels"
        )
    label = read_image(label_path, kind="label", allowed_labels=(0, 1, 2))
    ct_geometry = Geometry.from_image(ct.image)
    if not Geometry.from_image(label).is_close(ct_geometry, atol=0.01):
        raise GeometryError(
            f"patient {pid}: the label map's grid {Geometry.from_image(label).size} does not match the CT series "
            f"{choice.ct.uid} ({ct_geometry.size})",
            path=label_path,
            hint="export labels on the original CT grid (as predict writes them)",
        )
    labels = np.asarray(image_to_array(label)).astype(np.uint8)
    ds: pydicom.Dataset
    if fmt == "rtstruct":
        ds = labels_to_rtstruct(labels, ct_geometry, ct.datasets, split_nodes=split_nodes)
    else:
        ds = labels_to_seg(labels, ct.datasets)
    with atomic_path(out_path) as tmp:
        pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    return Path(out_path)


def export_labels(
    labels_dir: PathLike,
    dicom_dir: PathLike | DicomIndex,
    output_dir: PathLike,
    *,
    fmt: str = "rtstruct",
    split_nodes: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Export every label map of ``labels_dir`` as RTSTRUCT or DICOM-SEG (see the module docs).

    Parameters
    ----------
    labels_dir
        Folder of ``<PID>.nii.gz`` (or ``<PID>/<PID>.nii.gz``) label maps on the CT grids.
    dicom_dir
        The DICOM folder with the patients' CT series (or its index).
    output_dir
        Where ``<PID>_RTSTRUCT.dcm`` / ``<PID>_SEG.dcm`` go.
    fmt
        ``rtstruct`` or ``seg``.
    split_nodes
        RTSTRUCT: one ROI per connected node.
    force
        Overwrite existing files (otherwise they are skipped).
    progress
        ``callback(completed, total, message)`` after each patient.

    Raises
    ------
    ConfigError
        Unknown ``fmt``.
    DataError
        No label map in ``labels_dir``.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {fmt!r}", hint=f"use fmt= one of {', '.join(EXPORT_FORMATS)}"
        )
    maps = find_label_maps(labels_dir)
    if not maps:
        raise DataError(
            "no <PID>.nii.gz label map found", path=labels_dir, hint="give the folder predict wrote"
        )
    index = dicom_dir if isinstance(dicom_dir, DicomIndex) else index_dicom(dicom_dir)
    by_name = {output_name(pid): pid for pid in index.patients}
    out = ensure_output_dir(Path(output_dir).absolute())
    done: list[str] = []
    skipped: list[str] = []
    failed: dict[str, str] = {}
    for count, (stem, path) in enumerate(sorted(maps.items()), start=1):
        target = out / f"{stem}{EXPORT_FORMATS[fmt]}"
        try:
            if target.exists() and not force:
                skipped.append(stem)
            else:
                export_patient(path, by_name.get(stem, stem), index, fmt, target, split_nodes=split_nodes)  # type: ignore[arg-type]
                done.append(stem)
        except HecktorsegError as exc:
            failed[stem] = str(exc)
        except Exception as exc:
            logger.debug("unexpected error for %s:\n%s", stem, traceback.format_exc())
            failed[stem] = f"unexpected {type(exc).__name__}: {exc}"
        if stem in failed:
            logger.warning("%s failed: %s", stem, failed[stem])
        if progress is not None:
            progress(count, len(maps), stem)
    return BatchReport(output_dir=out, done=tuple(done), skipped=tuple(skipped), failed=failed)
