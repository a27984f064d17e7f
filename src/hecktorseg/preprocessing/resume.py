"""Resuming a preprocessing run: the hashed source files of a case, whether its earlier outputs are
up to date (same inputs, configuration, box and clinical values; complete image files), and
cleaning a case's folder before it is made again."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from hecktorseg.config import to_dict
from hecktorseg.errors import DataError, HecktorsegError
from hecktorseg.io import (
    Case,
    check_image_file,
)
from hecktorseg.io.files import check_input_file, is_stale_temp
from hecktorseg.preprocessing.config import PreprocessConfig
from hecktorseg.preprocessing.record import (
    ManifestEntry,
    SourceFile,
    record_path,
    sha256_file,
)

__all__: list[str] = []

logger = logging.getLogger(__name__)


def _sources(case: Case) -> dict[str, SourceFile]:
    roles = {"ct": case.ct_path, "pet": case.pet_path}
    if case.label_path is not None:
        roles["label"] = case.label_path
    out = {}
    for role, path in roles.items():
        p = Path(path)
        if not p.exists() and not p.is_symlink():
            raise DataError(
                f"patient {case.patient_id}: {role} file not found",
                path=p,
                hint="check the dataset folder; the other cases are processed anyway",
            )
        check_input_file(p, what=f"patient {case.patient_id}: {role} file", allow_dir=True)
        try:
            out[role] = SourceFile(p.absolute(), sha256_file(p))
        except OSError as exc:
            raise DataError(f"patient {case.patient_id}: cannot read {role} file ({exc})", path=p) from None
    return out


def _up_to_date(case: Case, sources: dict[str, SourceFile], config: PreprocessConfig, out: Path) -> bool:
    rec = record_path(out, case.patient_id)
    if not rec.is_file():
        return False
    try:
        data = json.loads(rec.read_text(encoding="utf-8"))
        entry = ManifestEntry.from_dict(data, out, where=str(rec))
    except (HecktorsegError, OSError, ValueError):
        return False
    if to_dict(entry.config) != to_dict(config):
        return False
    if {r: s.sha256 for r, s in entry.sources.items()} != {r: s.sha256 for r, s in sources.items()}:
        return False
    if entry.centre != case.centre or entry.clinical != case.clinical:  # the clinical table changed
        return False
    table_box = case.bbox if config.box_source in ("auto", "table") else None
    if table_box is not None and (entry.box_source != "table" or entry.bbox != table_box):
        return False
    if table_box is None and entry.box_source == "table":
        return False
    if not entry.outputs_exist():
        return False
    for path in (entry.ct_path, entry.pet_path, entry.label_path):
        if path is None:
            continue
        try:
            check_image_file(path)  # header + size: a truncated or replaced output is redone
        except HecktorsegError as exc:
            logger.info("earlier output is not valid, redoing %s: %s", case.patient_id, exc)
            return False
    return True


def _clean_case_dir(folder: Path, patient_id: str) -> None:
    """Remove the record, outputs and stray temporary files of a case about to be (re)made."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        stray_tmp = p.name.startswith(".") and ".tmp" in p.name and is_stale_temp(p)
        ours = p.name.startswith(f"{patient_id}_") and (p.name.endswith((".nii.gz", ".nii", ".json")))
        if p.is_file() and (stray_tmp or ours):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
