"""Finding a dataset's files: which layout a folder holds (:func:`detect_layout`) and the box and
clinical tables kept beside its images (:func:`find_bbox_tables`, :func:`find_clinical_tables`)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from hecktorseg.errors import DataError, LayoutError
from hecktorseg.io.bbox import BBox
from hecktorseg.io.case import Layout
from hecktorseg.io.layout_specs import (
    LAYOUT_SPECS,
    FileScheme,
    LayoutSpec,
    layout_spec,
    split_image_suffix,
)
from hecktorseg.io.tables import read_bbox_table
from hecktorseg.typing import PathLike

__all__ = ["detect_layout", "find_bbox_tables", "find_clinical_tables", "image_files"]


_LAYOUT_HELP = (
    "expected one of: "
    + "; ".join(f"{spec.name} ({spec.title})" for spec in LAYOUT_SPECS)
    + " — see the dataset formats page of the docs"
)


def image_files(folder: PathLike) -> dict[str, Path]:
    """Image files in ``folder`` keyed by their name without the image suffix.

    Every reader of images, label maps and predictions finds them here, so one rule holds
    everywhere: one image in two formats (``CHUM-001.nii.gz`` and ``CHUM-001.mha``) is an
    error naming both files, never a silent choice of one of them. A broken symbolic link is
    listed too, so that reading it names it as broken instead of the image being "not found".

    Raises
    ------
    DataError
        Two files with the same name but different image suffixes.
    """
    out: dict[str, Path] = {}
    root = Path(folder)
    if not root.is_dir():
        return out
    for path in sorted(root.iterdir()):
        # a broken link is kept: reading it then says so, rather than "not found"
        if path.name.startswith(".") or not (path.is_file() or (path.is_symlink() and not path.exists())):
            continue
        split = split_image_suffix(path.name)
        if split is None:
            continue
        if split[0] in out:
            raise DataError(
                f"one image in two files: {out[split[0]].name} and {path.name}",
                path=path,
                hint="keep one of the two files (move the other out of the folder)",
            )
        out[split[0]] = path
    return out


_images_in = image_files


def _check_root(root: PathLike) -> Path:
    r = Path(root)
    if not r.exists():
        raise LayoutError("dataset folder not found", path=r, hint="check the path")
    if not r.is_dir():
        raise LayoutError("dataset path is not a folder", path=r, hint="give the dataset's root folder")
    return r


def _patient_folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def _scheme_matches(root: Path, scheme: FileScheme) -> bool:
    """Whether the folder holds at least one CT or PET file named as the scheme says."""
    if scheme.channels_from_dataset_json:  # nnU-Net: <case>_<4 digits>
        stems = {**_images_in(root / "imagesTs"), **_images_in(root / "imagesTr")}
        return any(re.search(r"_\d{4}$", stem) for stem in stems)
    ct_tail, pet_tail = FileScheme.tail(scheme.ct), FileScheme.tail(scheme.pet)
    for images in dict.fromkeys(scheme.images):
        folder = root / images
        if scheme.patient_folders:
            for sub in _patient_folders(folder):
                stems = _images_in(sub)
                if f"{sub.name}{ct_tail}" in stems or f"{sub.name}{pet_tail}" in stems:
                    return True
        elif any(
            stem.endswith((ct_tail, pet_tail)) and len(stem) > len(ct_tail) for stem in _images_in(folder)
        ):
            return True
    return False


def _find_files(root: Path, patterns: Sequence[str]) -> list[Path]:
    """Files matching ``patterns`` (globs) in the root, else in its parent (in pattern order)."""
    for folder in (root, root.parent):
        found = [p for pattern in patterns for p in sorted(folder.glob(pattern)) if p.is_file()]
        if found:
            return list(dict.fromkeys(found))
    return []


def _has_marker(root: Path, spec: LayoutSpec) -> bool:
    return bool(spec.markers) and bool(_find_files(root, spec.markers))


def detect_layout(root: PathLike, *, _depth: int = 0) -> Layout:
    """Recognise the layout of a dataset folder from the layout records.

    Parameters
    ----------
    root
        Dataset root.

    Returns
    -------
    Layout
        Among the layouts whose files are present, the first (in the order of
        :data:`~hecktorseg.io.layout_specs.LAYOUT_SPECS`) whose marker file
        (``dataset.json``, a 2025/2026 table) lies in the root or its parent;
        otherwise the first that needs no marker (2022 before 2025, 2020, 2021).

    Raises
    ------
    LayoutError
        The folder is missing or matches no layout.
    """
    r = _check_root(root)
    candidates = [spec for spec in LAYOUT_SPECS if any(_scheme_matches(r, sc) for sc in spec.schemes)]
    for spec in candidates:
        if _has_marker(r, spec):
            return spec.layout
    for spec in candidates:
        if not spec.needs_marker:
            return spec.layout
    if candidates:
        spec = candidates[0]
        raise LayoutError(
            f"the files look like layout {spec.name} ({spec.title}) but {' or '.join(spec.markers)} is missing",
            path=r,
            hint=f"add {spec.markers[0]}, or pass the layout explicitly",
        )
    if _depth == 0:  # e.g. the 2020 release keeps the cases in hecktor_nii/ beside bbox.csv
        for sub in _patient_folders(r):
            try:
                found = detect_layout(sub, _depth=1)
            except LayoutError:
                continue
            raise LayoutError(
                "no known dataset layout found",
                path=r,
                hint=f"its sub-folder {sub} looks like layout {found.value}; pass that folder instead",
            )
    raise LayoutError("no known dataset layout found", path=r, hint=_LAYOUT_HELP)


def find_bbox_tables(root: PathLike, layout: Layout | str) -> list[Path]:
    """The box tables a layout keeps beside its images (root first, then the root's parent).

    2020: ``bbox.csv``; 2021: ``hecktor2021_bbox_*.csv`` (all of them); other layouts: none.
    """
    return _find_files(Path(root), layout_spec(layout).bbox_tables)


def find_clinical_tables(root: PathLike, layout: Layout | str) -> list[Path]:
    """The clinical tables of a layout found in the root (or else its parent), in the record's order.

    2025: ``HECKTOR_2025_Training_Task_1.csv`` or ``hecktor2025_clinical_info_training.csv`` +
    ``hecktor2025_endpoint_training.csv``; 2026: ``HECKTOR_2026_Training_Task.csv``; others: none.
    """
    patterns = layout_spec(layout).clinical_tables
    for folder in (Path(root), Path(root).parent):
        named = [folder / pattern for pattern in patterns if not any(c in pattern for c in "*?[")]
        odd = [p for p in named if os.path.lexists(p) and not p.is_file()]
        if odd:  # a FIFO, folder or link loop: ignoring it would change the centres (and folds)
            raise DataError(
                "clinical table is not a readable regular file (a folder, FIFO, device or broken link)",
                path=odd[0],
                hint="replace it with the CSV file, or remove it",
            )
    return _find_files(Path(root), patterns)


def _load_tables(tables: list[Path]) -> dict[str, tuple[BBox, Path]]:
    boxes: dict[str, tuple[BBox, Path]] = {}
    for table in tables:
        for pid, box in read_bbox_table(table).items():
            if pid in boxes:
                raise DataError(
                    f"patient {pid} has a box in two tables ({boxes[pid][1]} and {table})",
                    path=table,
                    hint="keep one row per patient across the tables, or pass one table explicitly",
                )
            boxes[pid] = (box, table)
    return boxes
