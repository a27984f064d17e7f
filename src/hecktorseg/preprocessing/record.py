"""The record of one preprocessed case (:class:`ManifestEntry`, :class:`SourceFile`): what was made
from what, with which box and settings, and its JSON form ``OUT/<PID>/<PID>_record.json``.

The merged index of all records is :mod:`hecktorseg.preprocessing.manifest` (whose docstring
shows a record's JSON).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from hecktorseg._version import __version__
from hecktorseg.config import from_dict, to_dict
from hecktorseg.errors import DataError
from hecktorseg.io import BBox, ClinicalInfo, ClinicalValue, Geometry, atomic_write_text
from hecktorseg.io.clinical import to_clinical
from hecktorseg.io.files import check_input_file
from hecktorseg.preprocessing.config import PreprocessConfig
from hecktorseg.preprocessing.grid import pet_fov_mask
from hecktorseg.typing import PathLike

__all__ = ["ManifestEntry", "SourceFile"]

RECORD_FORMAT = "hecktorseg-preprocess-record"
FORMAT_VERSION = 1
RECORD_SUFFIX = "_record.json"


def record_path(out_dir: PathLike, patient_id: str) -> Path:
    """Where the record of one case lives: ``OUT/<PID>/<PID>_record.json``."""
    return Path(out_dir) / patient_id / f"{patient_id}{RECORD_SUFFIX}"


def sha256_file(path: PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, or of every file (names and contents, sorted) under a folder."""
    p = Path(path)
    check_input_file(p, allow_dir=True)  # a FIFO or /dev/zero would block or never end
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            check_input_file(f)
            digest.update(f.relative_to(p).as_posix().encode("utf-8") + b"\0")
        with f.open("rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _rel(path: Path, out_dir: Path) -> str:
    try:
        return Path(os.path.relpath(Path(path).absolute(), out_dir.absolute())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).absolute().as_posix()


def _abs(text: str, out_dir: Path) -> Path:
    p = Path(text)
    return p if p.is_absolute() else Path(os.path.normpath(out_dir.absolute() / p))


def _clinical(value: Any) -> ClinicalInfo:
    if not isinstance(value, Mapping):
        return ClinicalInfo()
    out: dict[str, ClinicalValue] = {}
    for key, item in value.items():
        out[str(key)] = (
            float(item)
            if isinstance(item, (int, float)) and not isinstance(item, bool)
            else (None if item is None else str(item))
        )
    return ClinicalInfo(out)


@attrs.frozen
class SourceFile:
    """One input file of a case: its path and SHA-256 checksum."""

    path: Path
    sha256: str


@attrs.frozen
class ManifestEntry:
    """Everything recorded about one preprocessed case.

    Attributes
    ----------
    patient_id, centre
        Identity of the case.
    ct_path, pet_path, label_path
        The preprocessed images (absolute paths); ``label_path`` is ``None``
        for unlabelled cases.
    sources
        Input files by role (``"ct"``, ``"pet"``, ``"label"``) with checksums.
    ct_geometry, pet_geometry, label_geometry
        Grids of the original images (``ct_geometry`` is where predictions go back).
    reference
        The reference grid of the outputs.
    bbox, box_source
        The box used and where it came from (``table``, ``pet``, ``label``, ``given``).
    config
        The settings the case was made with.
    processed_at
        UTC time stamp (ISO 8601).
    hecktorseg_version
        Version that made it.
    label_voxels
        Voxels per label value (> 0) in the original label map.
    label_voxels_outside_box
        Of those, how many lay outside the box (lost to the reference grid).
    clinical
        The case's clinical values (:attr:`hecktorseg.io.Case.clinical`).
    layout
        The dataset layout the case came from (``"2025"``), if known.
    """

    patient_id: str
    centre: str
    ct_path: Path
    pet_path: Path
    label_path: Path | None
    sources: dict[str, SourceFile]
    ct_geometry: Geometry
    pet_geometry: Geometry
    label_geometry: Geometry | None
    reference: Geometry
    bbox: BBox
    box_source: str
    config: PreprocessConfig
    processed_at: str
    hecktorseg_version: str = __version__
    label_voxels: dict[int, int] = attrs.field(factory=dict)
    label_voxels_outside_box: dict[int, int] = attrs.field(factory=dict)
    clinical: ClinicalInfo = attrs.field(factory=ClinicalInfo, converter=to_clinical)
    layout: str | None = None

    def pet_fov_mask(self) -> npt.NDArray[np.bool_]:
        """Reference voxels inside the PET field of view, (z, y, x) — for ``stack_channels``."""
        return pet_fov_mask(self.pet_geometry, self.reference)

    def outputs_exist(self) -> bool:
        """Whether all output images of the entry are on disk."""
        paths = [self.ct_path, self.pet_path] + ([self.label_path] if self.label_path else [])
        return all(p.is_file() for p in paths)

    def to_dict(self, out_dir: PathLike) -> dict[str, Any]:
        """JSON-friendly record with paths relative to ``out_dir``."""
        out = Path(out_dir)
        return {
            "format": RECORD_FORMAT,
            "format_version": FORMAT_VERSION,
            "hecktorseg_version": self.hecktorseg_version,
            "processed_at": self.processed_at,
            "patient_id": self.patient_id,
            "centre": self.centre,
            "outputs": {
                "ct": _rel(self.ct_path, out),
                "pet": _rel(self.pet_path, out),
                "label": None if self.label_path is None else _rel(self.label_path, out),
            },
            "sources": {
                role: {"path": _rel(src.path, out), "sha256": src.sha256}
                for role, src in self.sources.items()
            },
            "ct_geometry": self.ct_geometry.to_dict(),
            "pet_geometry": self.pet_geometry.to_dict(),
            "label_geometry": None if self.label_geometry is None else self.label_geometry.to_dict(),
            "reference": self.reference.to_dict(),
            "bbox": self.bbox.to_dict(),
            "box_source": self.box_source,
            "label_voxels": {str(k): v for k, v in sorted(self.label_voxels.items())},
            "label_voxels_outside_box": {str(k): v for k, v in sorted(self.label_voxels_outside_box.items())},
            "clinical": self.clinical.to_dict(),
            "layout": self.layout,
            "config": to_dict(self.config),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], out_dir: PathLike, *, where: str = "manifest"
    ) -> ManifestEntry:
        """Inverse of :meth:`to_dict` (paths become absolute, resolved against ``out_dir``)."""
        out = Path(out_dir)
        try:
            outputs = data["outputs"]
            label_geo = data.get("label_geometry")
            return cls(
                patient_id=str(data["patient_id"]),
                centre=str(data.get("centre", "")),
                ct_path=_abs(outputs["ct"], out),
                pet_path=_abs(outputs["pet"], out),
                label_path=None if outputs.get("label") is None else _abs(outputs["label"], out),
                sources={
                    str(role): SourceFile(_abs(src["path"], out), str(src["sha256"]))
                    for role, src in data["sources"].items()
                },
                ct_geometry=Geometry.from_dict(data["ct_geometry"]),
                pet_geometry=Geometry.from_dict(data["pet_geometry"]),
                label_geometry=None if label_geo is None else Geometry.from_dict(label_geo),
                reference=Geometry.from_dict(data["reference"]),
                bbox=BBox.from_dict(data["bbox"]),
                box_source=str(data["box_source"]),
                config=from_dict(PreprocessConfig, data["config"], where=f"{where}.config"),
                processed_at=str(data.get("processed_at", "")),
                hecktorseg_version=str(data.get("hecktorseg_version", "unknown")),
                label_voxels={int(k): int(v) for k, v in dict(data.get("label_voxels") or {}).items()},
                label_voxels_outside_box={
                    int(k): int(v) for k, v in dict(data.get("label_voxels_outside_box") or {}).items()
                },
                clinical=_clinical(data.get("clinical")),
                layout=None if data.get("layout") is None else str(data["layout"]),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise DataError(
                f"invalid manifest record ({type(exc).__name__}: {exc})",
                path=where,
                hint="preprocess this case again with force=True",
            ) from None


def write_record(entry: ManifestEntry, out_dir: PathLike) -> Path:
    """Write the record of one case atomically (``OUT/<PID>/<PID>_record.json``)."""
    path = record_path(out_dir, entry.patient_id)
    atomic_write_text(path, json.dumps(entry.to_dict(out_dir), indent=2) + "\n")
    return path
