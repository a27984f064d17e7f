"""Predicting straight from a DICOM folder, with RTSTRUCT or DICOM-SEG results for the clinic.

:func:`predict_dicom` imports the folder with :func:`hecktorseg.dicom.import_dicom` (same
rules, into ``OUT/dicom_import``, so a rerun skips what is done), predicts it with
:func:`~hecktorseg.inference.predict_dataset` (``OUT/<PID>.nii.gz`` on the CT grid) and, for
``rtstruct`` / ``seg``, writes ``OUT/<PID>_RTSTRUCT.dcm`` / ``OUT/<PID>_SEG.dcm`` on each
patient's CT series with :func:`hecktorseg.dicom.export_labels`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hecktorseg.errors import ConfigError
from hecktorseg.reports import BatchReport
from hecktorseg.typing import PathLike, ProgressCallback

if TYPE_CHECKING:
    from hecktorseg.dicom import ImportOptions
    from hecktorseg.inference.predictor import Predictor

__all__ = ["IMPORT_DIR", "OUTPUT_FORMATS", "looks_like_dicom", "predict_dicom"]

OUTPUT_FORMATS = ("nifti", "rtstruct", "seg")
"""What :func:`predict_dicom` writes besides the NIfTI masks (``nifti``: only those)."""
IMPORT_DIR = "dicom_import"
"""Sub-folder of the output folder holding the imported HECKTOR 2025 dataset."""


def looks_like_dicom(folder: PathLike, *, probe: int = 50) -> bool:
    """Whether one of the first ``probe`` files under ``folder`` is DICOM (``DICM`` after 128 bytes).

    Reads a few bytes only (no DICOM library needed), so any input folder may be tested.
    """
    root = Path(folder)
    if not root.is_dir():
        return False
    seen = 0
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".nii", ".nii.gz", ".mha", ".nrrd", ".csv", ".json")):
                continue
            seen += 1
            try:
                with (Path(base) / name).open("rb") as handle:
                    if handle.read(132)[128:] == b"DICM":
                        return True
            except OSError:
                pass
            if seen >= probe:
                return False
    return False


def predict_dicom(
    dicom_dir: PathLike,
    output_dir: PathLike,
    predictor: Predictor,
    *,
    output_format: str = "rtstruct",
    import_options: ImportOptions | None = None,
    split_nodes: bool = False,
    force: bool = False,
    progress: ProgressCallback | None = None,
    **predict_options: Any,
) -> BatchReport:
    """Import a DICOM folder, predict every patient and write the results as NIfTI, RTSTRUCT or SEG.

    Parameters
    ----------
    dicom_dir
        A folder of DICOM files (as ``hecktorseg dicom import`` reads).
    output_dir
        Destination: ``<PID>.nii.gz`` masks, ``<PID>_RTSTRUCT.dcm`` / ``<PID>_SEG.dcm``, and the
        imported dataset in ``dicom_import/``.
    predictor
        A :class:`~hecktorseg.inference.Predictor`.
    output_format
        ``nifti``, ``rtstruct`` or ``seg``.
    import_options
        :class:`hecktorseg.dicom.ImportOptions` (series choice, SUV inputs, ROI names).
    split_nodes
        RTSTRUCT: one ROI per connected node.
    force
        Redo imports, predictions and exports that exist.
    progress
        ``callback(completed, total, message)`` per step and patient.
    **predict_options
        Passed to :func:`~hecktorseg.inference.predict_dataset` (``workers``, ``save_probabilities``, …).

    Returns
    -------
    BatchReport
        Per patient: done when every step succeeded; a failure at any step is its reason.

    Raises
    ------
    ConfigError
        Unknown ``output_format``, or the ``dicom`` extra is missing.
    """
    if output_format not in OUTPUT_FORMATS:
        raise ConfigError(
            f"unknown output format {output_format!r}",
            hint=f"use output_format= one of {', '.join(OUTPUT_FORMATS)}",
        )
    from hecktorseg.dicom import export_labels, import_dicom, index_dicom, output_name
    from hecktorseg.inference.batch import predict_dataset

    out = Path(output_dir)
    index = index_dicom(dicom_dir)
    imported = import_dicom(index, out / IMPORT_DIR, import_options, force=force, progress=progress)
    failed = dict(imported.failed)
    ready = [pid for pid in (*imported.done, *imported.skipped)]
    if not ready:
        return BatchReport(output_dir=out, failed=failed, warnings=imported.warnings)
    predicted = predict_dataset(
        out / IMPORT_DIR, out, predictor, layout="2025", force=force, progress=progress, **predict_options
    )
    names = {output_name(pid): pid for pid in ready}
    failed.update({names.get(k, k): v for k, v in predicted.failed.items()})
    ok = [names.get(k, k) for k in (*predicted.done, *predicted.skipped)]
    if output_format != "nifti" and ok:
        exported = export_labels(
            out, index, out, fmt=output_format, split_nodes=split_nodes, force=force, progress=progress
        )
        failed.update({names.get(k, k): v for k, v in exported.failed.items()})
    done = tuple(pid for pid in ok if pid not in failed)
    return BatchReport(
        output_dir=out, done=done, failed=failed, warnings=imported.warnings, seconds=predicted.seconds
    )
