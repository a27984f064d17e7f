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

This module holds the merged index (:class:`Manifest`, :func:`read_manifest`,
:func:`merge_manifests`); one case's record is :mod:`hecktorseg.preprocessing.record`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import attrs

from hecktorseg._version import __version__
from hecktorseg.config import from_dict, to_dict
from hecktorseg.errors import ConfigError, DataError
from hecktorseg.io import atomic_write_text
from hecktorseg.preprocessing.config import PreprocessConfig
from hecktorseg.preprocessing.record import (
    FORMAT_VERSION,
    RECORD_FORMAT,
    RECORD_SUFFIX,
    ManifestEntry,
    SourceFile,
    _now,
)
from hecktorseg.typing import PathLike

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "ManifestEntry",
    "SourceFile",
    "merge_manifests",
    "read_manifest",
    "write_manifest",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
"""File name of the merged index in the output folder."""
MANIFEST_FORMAT = "hecktorseg-preprocess-manifest"


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
            hint="preprocess all cases again with one config and force=True",
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
