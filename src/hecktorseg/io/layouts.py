"""Dataset layouts: detection, case discovery, validation — driven by the layout records.

What each layout looks like is described once, as data, in
:mod:`hecktorseg.io.layout_specs` (:data:`~hecktorseg.io.layout_specs.LAYOUT_SPECS`);
this module reads those records. Images may end in any of
:data:`~hecktorseg.io.layout_specs.IMAGE_SUFFIXES` (``.nii.gz``, ``.nii``, ``.mha``,
``.mhd``, ``.nrrd``). Clinical tables (2025/2026) become :attr:`Case.clinical`, and
the centre of each case follows :func:`hecktorseg.io.centre_of`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hecktorseg.errors import DataError, GeometryError, LayoutError
from hecktorseg.io._reading import check_file_complete, read_image
from hecktorseg.io.bbox import BBox
from hecktorseg.io.case import Case, Layout
from hecktorseg.io.clinical import ClinicalInfo, centre_from_id, centre_of, merge_clinical_tables
from hecktorseg.io.geometry import Geometry
from hecktorseg.io.layout_specs import (
    IMAGE_SUFFIXES,
    LABELS_BINARY,
    LABELS_GTVP_GTVN,
    LAYOUT_SPECS,
    FileScheme,
    LayoutSpec,
    layout_spec,
    parse_layout,
    split_image_suffix,
)
from hecktorseg.io.tables import read_bbox_table
from hecktorseg.typing import PathLike

__all__ = [
    "IMAGE_SUFFIXES",
    "LABELS_2022",
    "LABELS_BINARY",
    "allowed_labels",
    "centre_from_id",
    "detect_layout",
    "discover_cases",
    "find_bbox_tables",
    "find_clinical_tables",
    "layout_paths",
    "parse_layout",
    "read_nnunet_dataset_json",
    "validate_case",
]

logger = logging.getLogger(__name__)

LABELS_2022: frozenset[int] = LABELS_GTVP_GTVN
"""Label values of the 2022 (and 2025/2026) layouts: background, GTVp, GTVn."""

_LAYOUT_HELP = (
    "expected one of: "
    + "; ".join(f"{spec.name} ({spec.title})" for spec in LAYOUT_SPECS)
    + " — see the dataset formats page of the docs"
)


def allowed_labels(layout: Layout | str | None) -> frozenset[int] | None:
    """The label values a layout allows (``None``: anything in 0..255, e.g. for nnU-Net)."""
    if layout is None:
        return None
    return layout_spec(layout).labels


def _fmt(template: str, pid: str) -> str:
    return template.replace("{pid}", pid)


def _dirs(root: Path, scheme: FileScheme) -> tuple[Path, Path]:
    """The images and labels folders of a scheme: the first pair whose images folder exists."""
    for images, labels in zip(scheme.images, scheme.labels, strict=True):
        if (root / images).is_dir():
            return root / images, root / labels
    return root / scheme.images[0], root / scheme.labels[0]


def layout_paths(
    root: PathLike, patient_id: str, layout: Layout | str, *, suffix: str = ".nii.gz"
) -> tuple[Path, Path, Path]:
    """Where a layout (its canonical arrangement) puts one patient's CT, PET and label files.

    Parameters
    ----------
    root
        Dataset root.
    patient_id
        Patient (or nnU-Net case) identifier.
    layout
        The layout.
    suffix
        File ending.

    Returns
    -------
    tuple of Path
        ``(ct_path, pet_path, label_path)``.
    """
    r = Path(root)
    scheme = layout_spec(layout).schemes[0]
    images, labels = r / scheme.images[0], r / scheme.labels[0]
    if scheme.patient_folders:
        images = labels = images / patient_id
    return (
        images / f"{_fmt(scheme.ct, patient_id)}{suffix}",
        images / f"{_fmt(scheme.pet, patient_id)}{suffix}",
        labels / f"{_fmt(scheme.label, patient_id)}{suffix}",
    )


def _images_in(folder: Path) -> dict[str, Path]:
    """Image files in ``folder`` keyed by their name without the image suffix."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        split = split_image_suffix(path.name)
        if split is not None and split[0] not in out:
            out[split[0]] = path
    return out


def _check_root(root: PathLike) -> Path:
    r = Path(root)
    if not r.exists():
        raise LayoutError("dataset folder not found", path=r, hint="check the path")
    if not r.is_dir():
        raise LayoutError("dataset path is not a folder", path=r, hint="give the dataset's root folder")
    return r


def read_nnunet_dataset_json(root: PathLike) -> dict[str, Any]:
    """Read and check an nnU-Net ``dataset.json`` (``channel_names`` with CT and PET, ``file_ending``).

    Raises
    ------
    LayoutError
        The file is missing, not JSON, or lacks a CT or PET channel.
    """
    path = Path(root) / "dataset.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(
            "nnU-Net dataset.json not found", path=path, hint="an nnU-Net raw dataset needs a dataset.json"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"cannot read dataset.json ({exc})", path=path, hint="fix the JSON") from None
    if not isinstance(data, dict):
        raise LayoutError("dataset.json must hold a JSON object", path=path)
    channels = data.get("channel_names", data.get("modality"))
    if not isinstance(channels, Mapping):
        raise LayoutError(
            "dataset.json lacks 'channel_names'",
            path=path,
            hint='add "channel_names": {"0": "CT", "1": "PT"}',
        )
    return data


def _nnunet_channels(root: Path) -> tuple[int, int, str]:
    data = read_nnunet_dataset_json(root)
    channels = data.get("channel_names", data.get("modality"))
    assert isinstance(channels, Mapping)
    ct_channel = pet_channel = None
    for key, value in channels.items():
        name = str(value).strip().upper()
        if name == "CT" and ct_channel is None:
            ct_channel = int(key)
        elif name in ("PT", "PET") and pet_channel is None:
            pet_channel = int(key)
    if ct_channel is None or pet_channel is None:
        raise LayoutError(
            f"dataset.json channel_names {dict(channels)} lack a CT and a PET (PT) channel",
            path=root / "dataset.json",
            hint='use "channel_names": {"0": "CT", "1": "PT"}',
        )
    ending = str(data.get("file_ending", ".nii.gz"))
    return ct_channel, pet_channel, ending


def _tails(root: Path, scheme: FileScheme) -> tuple[str, str, str]:
    """The CT, PET and label name tails of a scheme (nnU-Net: channels from ``dataset.json``)."""
    if scheme.channels_from_dataset_json and (root / "dataset.json").is_file():
        ct_channel, pet_channel, _ = _nnunet_channels(root)
        return f"_{ct_channel:04d}", f"_{pet_channel:04d}", FileScheme.tail(scheme.label)
    return FileScheme.tail(scheme.ct), FileScheme.tail(scheme.pet), FileScheme.tail(scheme.label)


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


def _missing(path_stem: Path, what: str, pid: str) -> DataError:
    expected = path_stem.with_name(path_stem.name + IMAGE_SUFFIXES[0])
    others = ", ".join(IMAGE_SUFFIXES[1:])
    return DataError(
        f"patient {pid}: {what} image not found (also looked for {others})",
        path=expected,
        hint=f"add the {what} image, or remove the patient's other files from the dataset",
    )


def _pair(
    pid: str, ct: Path | None, pet: Path | None, ct_stem: Path, pet_stem: Path, strict: bool
) -> tuple[Path, Path]:
    """The CT and PET paths; a missing one raises (strict) or becomes its expected path."""
    found: list[Path] = []
    for path, stem, what in ((ct, ct_stem, "CT"), (pet, pet_stem, "PET")):
        if path is not None:
            found.append(path)
            continue
        error = _missing(stem, what, pid)
        if strict:
            raise error
        logger.warning("%s", error)
        found.append(stem.with_name(stem.name + IMAGE_SUFFIXES[0]))
    return found[0], found[1]


_Found = list[tuple[str, Path, Path, Path | None]]


def _discover_folders(images: Path, tails: tuple[str, str, str], strict: bool) -> _Found:
    """Cases of a scheme with one folder per patient (label map in the same folder)."""
    ct_tail, pet_tail, label_tail = tails
    found: _Found = []
    for sub in _patient_folders(images):
        pid = sub.name
        files = _images_in(sub)
        ct, pet, label = files.get(pid + ct_tail), files.get(pid + pet_tail), files.get(pid + label_tail)
        if ct is None and pet is None:
            if label is not None and strict:
                raise _missing(sub / f"{pid}{ct_tail}", "CT", pid)
            if label is None:
                logger.debug("skipping %s: no %s%s / %s%s images", sub, pid, ct_tail, pid, pet_tail)
                continue
        ct, pet = _pair(pid, ct, pet, sub / f"{pid}{ct_tail}", sub / f"{pid}{pet_tail}", strict)
        found.append((pid, ct, pet, label))
    return found


def _discover_flat(images: Path, labels: Path, tails: tuple[str, str, str], strict: bool) -> _Found:
    """Cases of a scheme keeping all files directly in its images / labels folders."""
    ct_tail, pet_tail, label_tail = tails
    files = _images_in(images)
    label_files = _images_in(labels)
    id_tails = [ct_tail, pet_tail]
    if labels == images and label_tail:  # a label alone names a case too (its images are missing)
        id_tails.append(label_tail)
    pids = sorted(
        {stem[: -len(tail)] for stem in files for tail in id_tails if stem.endswith(tail) and stem != tail}
    )
    found: _Found = []
    for pid in pids:
        ct, pet = _pair(
            pid,
            files.get(pid + ct_tail),
            files.get(pid + pet_tail),
            images / f"{pid}{ct_tail}",
            images / f"{pid}{pet_tail}",
            strict,
        )
        found.append((pid, ct, pet, label_files.get(pid + label_tail)))
    return found


def _scheme_of(root: Path, spec: LayoutSpec) -> FileScheme:
    """The first of a layout's arrangements whose files are present (else its canonical one)."""
    return next((sc for sc in spec.schemes if _scheme_matches(root, sc)), spec.schemes[0])


def _discover(root: Path, scheme: FileScheme, strict: bool) -> _Found:
    """Cases of one arrangement of a layout."""
    images, labels = _dirs(root, scheme)
    tails = _tails(root, scheme)
    if scheme.patient_folders:
        return _discover_folders(images, tails, strict)
    return _discover_flat(images, labels, tails, strict)


def _expected_label(root: Path, scheme: FileScheme, pid: str) -> Path:
    images, labels = _dirs(root, scheme)
    folder = images / pid if scheme.patient_folders else labels
    return folder / f"{_fmt(scheme.label, pid)}{IMAGE_SUFFIXES[0]}"


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
    return _find_files(Path(root), layout_spec(layout).clinical_tables)


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


def discover_cases(
    root: PathLike,
    *,
    layout: Layout | str | None = None,
    bbox_table: PathLike | None = None,
    require_labels: bool = False,
    strict: bool = True,
    clinical_tables: Sequence[PathLike] | None = None,
) -> list[Case]:
    """Find every case of a dataset folder.

    Only file names are checked here (fast); use :func:`validate_case` to read
    and check the images themselves.

    Parameters
    ----------
    root
        Dataset root.
    layout
        Force a layout (``"2020"``, ``"2021"``, ``"2022"``, ``"2025"``, ``"2026"``,
        ``"nnunet"``); detected with :func:`detect_layout` if ``None``.
    bbox_table
        Box table to attach boxes from; by default the layout's own table if
        one is found (see :func:`find_bbox_tables`).
    require_labels
        Raise if a case has no label map.
    strict
        Raise if a case misses its CT or PET image. With ``False`` the case is
        kept with the path where the image was expected (and a warning is
        logged), so batch tools report that patient and finish the others.
    clinical_tables
        Clinical tables (CSV with ``PatientID``) whose rows become :attr:`Case.clinical`;
        by default the layout's own (see :func:`find_clinical_tables`). A case without a
        row gets empty clinical values. The centre of each case follows
        :func:`~hecktorseg.io.centre_of` (``CenterID``, else the id prefix; without a
        ``CenterID`` column a warning is logged).

    Returns
    -------
    list of Case
        Sorted by patient id.

    Raises
    ------
    LayoutError
        The folder does not exist, matches no layout, or holds no case of the forced layout.
    DataError
        A case misses its CT or PET image (with ``strict``; or its label with ``require_labels``),
        a box table is invalid, a used box table has no row for a case, or a clinical
        table is unreadable or lists a patient twice (the message names the table).
    """
    r = _check_root(root)
    lay = detect_layout(r) if layout is None else parse_layout(layout)
    scheme = _scheme_of(r, layout_spec(lay))
    found = _discover(r, scheme, strict)
    if not found:
        hint = _LAYOUT_HELP
        if layout is not None:
            try:
                detected = detect_layout(r)
            except LayoutError:
                pass
            else:
                if detected is not lay:
                    hint = f"the folder looks like layout {detected.value}; pass that layout or leave it out"
        raise LayoutError(f"no cases of layout {lay.value} found", path=r, hint=hint)
    tables = [Path(bbox_table)] if bbox_table is not None else find_bbox_tables(r, lay)
    boxes = _load_tables(tables) if tables else {}
    clinical_paths = (
        [Path(t) for t in clinical_tables] if clinical_tables is not None else find_clinical_tables(r, lay)
    )
    clinical = merge_clinical_tables(clinical_paths) if clinical_paths else {}
    cases = []
    for pid, ct, pet, label in found:
        if require_labels and label is None:
            expected = _expected_label(r, scheme, pid)
            raise DataError(
                f"patient {pid}: label map not found",
                path=expected,
                hint="add the ground-truth mask, or run without requiring labels",
            )
        bbox: BBox | None = None
        if tables:
            if pid not in boxes:
                raise DataError(
                    f"patient {pid} has no row in the box table",
                    path=tables[0] if len(tables) == 1 else r,
                    hint="add a row for it, or pass the matching box table (--bbox-table)",
                )
            bbox = boxes[pid][0]
        info = clinical.get(pid, ClinicalInfo())
        if clinical_paths and pid not in clinical:
            logger.debug("patient %s has no row in the clinical table(s)", pid)
        cases.append(
            Case(
                patient_id=pid,
                centre=centre_of(pid, info),
                ct_path=ct,
                pet_path=pet,
                label_path=label,
                bbox=bbox,
                layout=lay,
                clinical=info,
            )
        )
    logger.debug("found %d cases of layout %s in %s", len(cases), lay.value, r)
    return sorted(cases, key=lambda c: c.patient_id)


def _overlap(a: Geometry, b: Geometry) -> bool:
    lo_a, hi_a = a.world_bounds()
    lo_b, hi_b = b.world_bounds()
    return bool(np.all(np.minimum(hi_a, hi_b) > np.maximum(lo_a, lo_b)))


def validate_case(case: Case, *, allowed_labels: Collection[int] | None = None) -> None:
    """Read a case's images and check them: readable, 3-D, finite, valid labels, overlapping grids.

    Parameters
    ----------
    case
        The case.
    allowed_labels
        Label values allowed in the label map; by default those of the case's
        layout (``{0, 1}`` for 2020/2021, ``{0, 1, 2}`` for 2022, the ``labels`` of
        ``dataset.json`` for nnU-Net).

    Raises
    ------
    DataError
        An image is missing, unreadable, truncated, not 3-D, holds NaN values,
        or the label map holds values outside ``allowed_labels`` (the message
        names the file).
    GeometryError
        The PET does not overlap the CT, the label map is not on the CT's grid
        (spacing, or origin off by more than one voxel), or the box lies outside the CT.
    """
    labels = allowed_labels if allowed_labels is not None else _default_labels(case)
    for path in (case.ct_path, case.pet_path, case.label_path):
        if path is not None:
            check_file_complete(path)
    ct = Geometry.from_image(read_image(case.ct_path, kind="ct"))
    pet = Geometry.from_image(read_image(case.pet_path, kind="pet"))
    if not _overlap(ct, pet):
        raise GeometryError(
            "the PET image does not overlap the CT image in world coordinates",
            path=case.pet_path,
            hint="check the origins of the CT and PET files (they must share one world frame)",
        )
    if case.label_path is not None:
        label = Geometry.from_image(read_image(case.label_path, kind="label", allowed_labels=labels))
        same_spacing = np.allclose(label.spacing, ct.spacing, rtol=1e-3, atol=1e-3)
        shift = np.abs(np.asarray(label.origin) - np.asarray(ct.origin)) / np.asarray(ct.spacing)
        if (
            not same_spacing
            or np.any(shift > 1.0 + 1e-3)
            or not np.allclose(label.direction, ct.direction, atol=1e-4)
        ):
            raise GeometryError(
                f"label grid (spacing {label.spacing}, origin {label.origin}) does not match "
                f"the CT grid (spacing {ct.spacing}, origin {ct.origin})",
                path=case.label_path,
                hint="the label map must be on the CT grid; resample it (nearest neighbour) onto the CT",
            )
    if case.bbox is not None:
        lo, hi = ct.world_bounds()
        if not np.all(np.minimum(hi, case.bbox.upper) > np.maximum(lo, case.bbox.lower)):
            raise GeometryError(
                f"patient {case.patient_id}: the box {case.bbox.to_dict()} lies outside the CT",
                path=case.ct_path,
                hint="check the box table (world millimetres, LPS like the images)",
            )


def _default_labels(case: Case) -> frozenset[int] | None:
    if case.layout is Layout.NNUNET and case.label_path is not None:
        try:
            labels = read_nnunet_dataset_json(case.label_path.parent.parent).get("labels")
        except LayoutError:
            return None
        if isinstance(labels, Mapping):
            values: set[int] = set()
            for value in labels.values():
                items = value if isinstance(value, (list, tuple)) else [value]
                values.update(int(v) for v in items if isinstance(v, (int, float)))
            return frozenset(values) or None
        return None
    return allowed_labels(case.layout)
