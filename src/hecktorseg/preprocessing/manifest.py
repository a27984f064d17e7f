"""The preprocessing manifest: what was made from what, with which box and settings.

Design (resumable, cluster-friendly):

* Every processed case gets a **record** ``OUT/<PID>/<PID>_record.json``, written
  atomically *after* its images. A case is complete exactly when its record
  exists, so an interrupted run (even ``kill -9``) never leaves a case that looks
  done but is not, and parts of a dataset processed on different machines
  (``--num-parts P --part-id K``) never write the same file.
* ``OUT/manifest.json`` is the merged **index** of all records plus the config
  and the hecktorseg version. Every run rewrites it at the end from all records
  found in ``OUT``; :func:`merge_manifests` does the same on demand (e.g. after
  all jobs of a Slurm array finished).
* :func:`read_manifest` always merges: it builds the entries from every record
  found, so it is complete even when parts finished after the index was last
  written (the index's entries are used only for a folder without records).

All paths are stored relative to ``OUT`` (POSIX separators) and returned as
absolute :class:`~pathlib.Path` objects after reading.

A record (and each value of the index's ``"cases"``) looks like::

    {"format": "hecktorseg-preprocess-record", "format_version": 1,
     "hecktorseg_version": "0.1.0", "processed_at": "2026-01-01T00:00:00.000000+00:00",
     "patient_id": "CHGJ007", "centre": "CHGJ",
     "outputs": {"ct": "CHGJ007/CHGJ007_ct.nii.gz", "pet": "CHGJ007/CHGJ007_pt.nii.gz",
                 "label": "CHGJ007/CHGJ007_ct_gtvt.nii.gz"},          # label: null if none
     "sources": {"ct": {"path": "../raw/CHGJ007/CHGJ007_ct.nii.gz", "sha256": "…"},
                 "pet": {…}, "label": {…}},
     "ct_geometry": {"size": […], "spacing": […], "origin": […], "direction": […]},
     "pet_geometry": {…}, "label_geometry": {…} or null, "reference": {…},
     "bbox": {"x1": …, "x2": …, "y1": …, "y2": …, "z1": …, "z2": …},
     "box_source": "table",                                           # table | pet | label | given
     "label_voxels": {"1": 5120, "2": 830},           # per label value, in the original label map
     "label_voxels_outside_box": {"1": 0, "2": 12},   # of those, centres outside the box (lost)
     "clinical": {"CenterID": 1, "Age": 61, "HPV Status": null, …},  # the clinical table's row
     "layout": "2025",                                # the dataset layout, null if unknown
     "config": {…every PreprocessConfig field…}}

``label_voxels``, ``label_voxels_outside_box`` and ``clinical`` are empty for unlabelled cases
or datasets without a clinical table (and absent from records of older versions).

The index ``manifest.json`` is ``{"format": "hecktorseg-preprocess-manifest",
"format_version": 1, "hecktorseg_version", "written_at", "config", "cases": {pid: record}}``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from hecktorseg._version import __version__
from hecktorseg.config import from_dict, to_dict
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.io import BBox, ClinicalInfo, ClinicalValue, Geometry, atomic_write_text
from hecktorseg.io.clinical import to_clinical
from hecktorseg.preprocessing.config import PreprocessConfig
from hecktorseg.preprocessing.grid import pet_fov_mask
from hecktorseg.typing import PathLike

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestEntry",
    "SourceFile",
    "merge_manifests",
    "read_manifest",
    "record_path",
    "sha256_file",
    "write_manifest",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
"""File name of the merged index in the output folder."""
MANIFEST_FORMAT = "hecktorseg-preprocess-manifest"
RECORD_FORMAT = "hecktorseg-preprocess-record"
FORMAT_VERSION = 1
RECORD_SUFFIX = "_record.json"


def record_path(out_dir: PathLike, patient_id: str) -> Path:
    """Where the record of one case lives: ``OUT/<PID>/<PID>_record.json``."""
    return Path(out_dir) / patient_id / f"{patient_id}{RECORD_SUFFIX}"


def sha256_file(path: PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, or of every file (names and contents, sorted) under a folder."""
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
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
                hint="rerun hecktorseg preprocess with --force for this case",
            ) from None


@attrs.frozen
class Manifest:
    """The merged manifest of a preprocessed dataset.

    Attributes
    ----------
    out_dir
        The output folder (absolute).
    config
        The settings all cases were made with.
    entries
        One :class:`ManifestEntry` per patient id, sorted by id.
    hecktorseg_version
        Version that wrote the manifest.
    """

    out_dir: Path
    config: PreprocessConfig
    entries: dict[str, ManifestEntry]
    hecktorseg_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly manifest (paths relative to ``out_dir``)."""
        return {
            "format": MANIFEST_FORMAT,
            "format_version": FORMAT_VERSION,
            "hecktorseg_version": self.hecktorseg_version,
            "written_at": _now(),
            "config": to_dict(self.config),
            "cases": {pid: self.entries[pid].to_dict(self.out_dir) for pid in sorted(self.entries)},
        }

    @property
    def patient_ids(self) -> list[str]:
        """Sorted patient ids."""
        return sorted(self.entries)

    @property
    def label_values(self) -> frozenset[int]:
        """Label values (> 0) found in the cases' original label maps (e.g. ``{1, 2}`` for GTVp + GTVn).

        Empty for unlabelled datasets and for manifests written before hecktorseg recorded
        ``label_voxels``.
        """
        return frozenset(v for entry in self.entries.values() for v in entry.label_voxels)

    @property
    def layouts(self) -> frozenset[str]:
        """The dataset layouts the cases came from (``{"2025"}``; empty when not recorded)."""
        return frozenset(e.layout for e in self.entries.values() if e.layout is not None)


def write_record(entry: ManifestEntry, out_dir: PathLike) -> Path:
    """Write the record of one case atomically (``OUT/<PID>/<PID>_record.json``)."""
    path = record_path(out_dir, entry.patient_id)
    atomic_write_text(path, json.dumps(entry.to_dict(out_dir), indent=2) + "\n")
    return path


def write_manifest(manifest: Manifest) -> Path:
    """Write ``manifest.json`` into ``manifest.out_dir`` atomically."""
    path = manifest.out_dir / MANIFEST_NAME
    atomic_write_text(path, json.dumps(manifest.to_dict(), indent=2) + "\n")
    return path


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(
            f"cannot read manifest ({exc})", path=path, hint="rerun hecktorseg preprocess to rebuild it"
        ) from None
    if not isinstance(data, dict):
        raise DataError("manifest is not a JSON object", path=path, hint="rerun hecktorseg preprocess")
    return data


def _collect(out: Path) -> tuple[dict[str, ManifestEntry], PreprocessConfig | None]:
    entries: dict[str, ManifestEntry] = {}
    index_config: PreprocessConfig | None = None
    index = out / MANIFEST_NAME
    if index.is_file():
        data = _load_json(index)
        if data.get("format") != MANIFEST_FORMAT:
            raise DataError("not a hecktorseg preprocessing manifest", path=index)
        if data.get("config") is not None:
            index_config = from_dict(PreprocessConfig, data["config"], where=f"{index}.config")
        for pid, record in dict(data.get("cases", {})).items():
            entries[str(pid)] = ManifestEntry.from_dict(record, out, where=str(index))
    records: dict[str, ManifestEntry] = {}
    for path in sorted(out.glob(f"*/*{RECORD_SUFFIX}")):
        if path.name != f"{path.parent.name}{RECORD_SUFFIX}":
            continue
        data = _load_json(path)
        if data.get("format") != RECORD_FORMAT:
            continue
        entry = ManifestEntry.from_dict(data, out, where=str(path))
        records[entry.patient_id] = entry
    if records:  # the records are the truth; the index only serves folders without them
        entries = records
    kept = {}
    for pid in sorted(entries):
        if entries[pid].outputs_exist():
            kept[pid] = entries[pid]
        else:
            logger.warning("manifest: outputs of %s are missing; the case is left out", pid)
    return kept, index_config


def read_manifest(out_dir: PathLike) -> Manifest:
    """Read the manifest of a preprocessed dataset, merging the index and all per-case records.

    Parameters
    ----------
    out_dir
        The output folder of :func:`~hecktorseg.preprocessing.preprocess_dataset`.

    Returns
    -------
    Manifest
        With absolute paths; cases whose output images are missing are left out.

    Raises
    ------
    DataError
        No manifest or record in ``out_dir``, or an unreadable one.
    ConfigError
        Cases were made with different settings (rerun with one config and ``--force``).
    """
    out = Path(out_dir).absolute()
    if not out.is_dir():
        raise DataError("preprocessed folder not found", path=out, hint="run hecktorseg preprocess first")
    entries, index_config = _collect(out)
    if not entries and index_config is None:
        raise DataError(
            "no preprocessing manifest or case record found",
            path=out,
            hint="run hecktorseg preprocess into this folder first",
        )
    configs = {json.dumps(to_dict(e.config), sort_keys=True): e.config for e in entries.values()}
    if len(configs) > 1:
        groups: dict[str, list[str]] = {}
        for pid, e in entries.items():
            groups.setdefault(json.dumps(to_dict(e.config), sort_keys=True), []).append(pid)
        examples = "; ".join(", ".join(ids[:3]) for ids in groups.values())
        raise ConfigError(
            f"cases were preprocessed with {len(configs)} different configurations ({examples})",
            path=out,
            hint="rerun hecktorseg preprocess over all cases with one config and --force",
        )
    config = next(iter(configs.values())) if configs else index_config
    assert config is not None
    return Manifest(out_dir=out, config=config, entries=entries)


def merge_manifests(out_dir: PathLike) -> Manifest:
    """Rebuild ``OUT/manifest.json`` from every case record in ``OUT`` (e.g. after all parts ran).

    Returns
    -------
    Manifest
        The merged manifest that was written.
    """
    manifest = read_manifest(out_dir)
    write_manifest(manifest)
    return manifest
