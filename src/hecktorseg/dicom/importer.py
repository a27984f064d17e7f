"""``dicom import``: a folder of DICOM files → a HECKTOR 2025 dataset with SUV PET and labels.

Writes ``DST/<PID>/<PID>__CT.nii.gz``, ``<PID>__PT.nii.gz`` (SUVbw) and ``<PID>.nii.gz``
(0/1 GTVp/2 GTVn, when an RTSTRUCT refers to the CT), a record per patient
``DST/dicom_records/<PID>.json`` and the summary ``DST/dicom_import.csv``. Patients whose
record says done, whose files are unchanged and whose options are the same are skipped unless
``force``; one failing patient is a one-line reason, the others go on. Like preprocessing, a
lock file keeps two runs from writing into one folder.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import re
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from hecktorseg._version import __version__
from hecktorseg.dicom.index import DicomIndex, SeriesEntry, index_dicom
from hecktorseg.dicom.patient import ImportOptions, import_patient
from hecktorseg.errors import ConfigError, DataError, HecktorsegError
from hecktorseg.io import atomic_write_text, ensure_output_dir, write_image
from hecktorseg.io.files import output_lock
from hecktorseg.reports import BatchReport
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["RECORDS_DIR", "SUMMARY_NAME", "import_dicom", "output_name", "read_selection_table"]

logger = logging.getLogger(__name__)

RECORDS_DIR = "dicom_records"
"""Folder of the output where each patient's import record (``<name>.json``) is written."""
SUMMARY_NAME = "dicom_import.csv"
"""The table of every imported patient, written at the top of the output folder."""
LOCK_NAME = ".hecktorseg-dicom-import.lock"
SUMMARY_COLUMNS = (
    "patient_id",
    "folder",
    "status",
    "ct_series",
    "pet_series",
    "suv_factor",
    "rois",
    "reason",
)


def output_name(patient_id: str) -> str:
    """The folder/file stem for a PatientID (characters other than letters, digits, ``-_.`` → ``_``)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", patient_id.strip())
    return "_" + name if name in ("", ".", "..") else name


def read_selection_table(path: PathLike) -> dict[str, dict[str, str]]:
    """Read a selection table: CSV with ``PatientID`` and ``ct_series`` and/or ``pet_series`` (UIDs).

    Raises
    ------
    DataError
        The file cannot be read or lacks the columns.
    """
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the selection table ({exc})", path=path) from None
    columns = set(rows[0]) if rows else set()
    if "PatientID" not in columns or not columns & {"ct_series", "pet_series"}:
        raise DataError(
            "a selection table needs the columns PatientID and ct_series and/or pet_series",
            path=path,
            hint="one row per patient whose series the rules cannot choose",
        )
    return {
        row["PatientID"].strip(): {
            k: (row.get(k) or "").strip() for k in ("ct_series", "pet_series") if (row.get(k) or "").strip()
        }
        for row in rows
        if (row.get("PatientID") or "").strip()
    }


def _fingerprint(series: Sequence[SeriesEntry], options: ImportOptions) -> str:
    digest = hashlib.sha256(json.dumps(attrs.asdict(options), sort_keys=True).encode())
    for s in series:
        for f in s.files:
            stat = f.path.stat()
            digest.update(f"{f.path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _paths(out: Path, name: str) -> dict[str, Path]:
    folder = out / name
    return {
        "ct": folder / f"{name}__CT.nii.gz",
        "pet": folder / f"{name}__PT.nii.gz",
        "label": folder / f"{name}.nii.gz",
        "record": out / RECORDS_DIR / f"{name}.json",
    }


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run_patient(
    pid: str, series: Sequence[SeriesEntry], out: Path, options: ImportOptions, force: bool
) -> dict[str, Any]:
    name = output_name(pid)
    paths = _paths(out, name)
    fingerprint = _fingerprint(series, options)
    old = _read_record(paths["record"])
    if (
        not force
        and old is not None
        and old.get("status") == "done"
        and old.get("fingerprint") == fingerprint
        and all(Path(p).exists() for p in old.get("outputs", {}).values())
    ):
        return {**old, "status": "skipped"}
    with contextlib.suppress(FileNotFoundError):
        paths["record"].unlink()  # no record: not done, whatever else is there
    base: dict[str, Any] = {
        "patient_id": pid,
        "folder": name,
        "fingerprint": fingerprint,
        "hecktorseg_version": __version__,
    }
    try:
        if not pid.strip():
            raise DataError("files without a PatientID (0010,0020)", path=series[0].first.path)
        result = import_patient(pid, series, options)
        outputs = {"ct": paths["ct"], "pet": paths["pet"]}
        write_image(result.ct, paths["ct"])
        write_image(result.pet, paths["pet"])
        if result.label is not None:
            write_image(result.label, paths["label"])
            outputs["label"] = paths["label"]
        else:
            with contextlib.suppress(FileNotFoundError):
                paths["label"].unlink()
        record = {
            **base,
            **result.record,
            "status": "done",
            "outputs": {k: str(v) for k, v in outputs.items()},
        }
    except HecktorsegError as exc:
        record = {**base, "status": "failed", "reason": str(exc)}
    except Exception as exc:  # a bug or an unexpected library error: report it, keep going
        logger.debug("unexpected error for %s:\n%s", pid, traceback.format_exc())
        text = str(exc).strip().splitlines()
        record = {
            **base,
            "status": "failed",
            "reason": f"unexpected {type(exc).__name__}: {text[-1] if text else ''}",
        }
    paths["record"].parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(paths["record"], json.dumps(record, indent=2, default=str) + "\n")
    return record


def _summary_row(record: dict[str, Any]) -> dict[str, str]:
    rois = record.get("rtstruct", {}).get("roi_labels", {})
    return {
        "patient_id": record.get("patient_id", ""),
        "folder": record.get("folder", ""),
        "status": record.get("status", ""),
        "ct_series": record.get("ct_series", {}).get("uid", ""),
        "pet_series": record.get("pet_series", {}).get("uid", ""),
        "suv_factor": f"{record['suv']['factor']:.6g}" if "suv" in record else "",
        "rois": ";".join(f"{k}={v}" for k, v in rois.items()),
        "reason": record.get("reason", ""),
    }


def import_dicom(
    source: PathLike | DicomIndex,
    output_dir: PathLike,
    options: ImportOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> BatchReport:
    """Import every patient of a DICOM folder into a HECKTOR 2025 dataset (see the module docs).

    Parameters
    ----------
    source
        A folder of DICOM files (any depth, any names), or its :class:`~hecktorseg.dicom.DicomIndex`.
    output_dir
        The dataset folder to write (created).
    options
        Series choice, SUV and ROI-name settings.
    force
        Redo patients that are up to date.
    progress
        ``callback(completed, total, message)`` after each patient.

    Returns
    -------
    BatchReport
        Done, skipped and failed patients; ``warnings`` lists unreadable files.

    Raises
    ------
    DataError
        ``source`` holds no DICOM file.
    ConfigError
        ``options`` name a series UID that no patient has.
    OutputError
        ``output_dir`` cannot be written, or another import is writing into it.
    """
    opts = options or ImportOptions()
    index = source if isinstance(source, DicomIndex) else index_dicom(source)
    held = {s.uid for group in index.series.values() for s in group}
    for name, uid in (("ct_series", opts.ct_series), ("pet_series", opts.pet_series)):
        if uid and uid not in held:
            raise ConfigError(
                f"no patient under {index.root} has the series {uid}",
                hint=f"check {name}=; the series of each patient are listed in the error that asks for a choice",
            )
    out = ensure_output_dir(Path(output_dir).absolute())
    names: dict[str, str] = {}
    for pid in index.patients:
        names.setdefault(output_name(pid), pid)
    records: list[dict[str, Any]] = []
    with output_lock(out, LOCK_NAME, what="DICOM import"):
        total = len(index.patients)
        if progress is not None:
            progress(0, total, "")
        for done, pid in enumerate(index.patients, start=1):
            if names[output_name(pid)] != pid:
                record = {
                    "patient_id": pid,
                    "status": "failed",
                    "reason": f"patient ids {names[output_name(pid)]!r} "
                    f"and {pid!r} map to one folder name {output_name(pid)!r}",
                }
            else:
                record = _run_patient(pid, index.series[pid], out, opts, force)
            if record["status"] == "failed":
                logger.warning("%s failed: %s", pid, record["reason"])
            for warning in record.get("warnings", []) if record["status"] == "done" else []:
                logger.warning("%s: %s", pid, warning)
            records.append(record)
            if progress is not None:
                progress(done, total, f"{pid} {record['status']}")
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_summary_row(r) for r in records)
        atomic_write_text(out / SUMMARY_NAME, buffer.getvalue())
    warnings = [f"unreadable DICOM file {p}: {why}" for p, why in index.unreadable.items()]
    if index.skipped > len(index.unreadable):
        warnings.append(
            f"{index.skipped - len(index.unreadable)} file(s) under {index.root} are not DICOM (skipped)"
        )
    return BatchReport(
        output_dir=out,
        done=tuple(r["patient_id"] for r in records if r["status"] == "done"),
        skipped=tuple(r["patient_id"] for r in records if r["status"] == "skipped"),
        failed={r["patient_id"]: r["reason"] for r in records if r["status"] == "failed"},
        warnings=tuple(warnings),
    )
