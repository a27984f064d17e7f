"""Dataset layouts of the HECKTOR editions and nnU-Net: detection, case discovery, validation.

=========  ==================================================================================
Layout     Files
=========  ==================================================================================
2020       ``<root>/<PID>/<PID>_ct.nii.gz``, ``<PID>_pt.nii.gz``, ``<PID>_ct_gtvt.nii.gz``;
           box table ``bbox.csv`` (in the root or its parent)
2021       ``<root>/<PID>_ct.nii.gz``, ``<PID>_pt.nii.gz``, ``<PID>_gtvt.nii.gz``;
           box tables ``hecktor2021_bbox_*.csv``
2022       ``<root>/imagesTr/<PID>__CT.nii.gz``, ``<PID>__PT.nii.gz``,
           ``<root>/labelsTr/<PID>.nii.gz`` (0 background, 1 GTVp, 2 GTVn); no box table
nnunet     ``<root>/imagesTr/<case>_0000.nii.gz`` (CT), ``_0001`` (PET), ``labelsTr/<case>.nii.gz``
           and ``dataset.json`` (``channel_names``, ``labels``, ``file_ending``)
=========  ==================================================================================

``.nii`` files are accepted wherever ``.nii.gz`` is (and ``.mha``/``.nrrd``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hecktorseg.errors import DataError, GeometryError, LayoutError
from hecktorseg.io._reading import check_file_complete, read_image
from hecktorseg.io.bbox import BBox
from hecktorseg.io.case import Case, Layout
from hecktorseg.io.files import check_input_file
from hecktorseg.io.geometry import Geometry
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
    "layout_paths",
    "parse_layout",
    "read_nnunet_dataset_json",
    "validate_case",
]

logger = logging.getLogger(__name__)

LABELS_BINARY: frozenset[int] = frozenset({0, 1})
"""Label values of the 2020/2021 editions: background and primary tumour (GTVt)."""
LABELS_2022: frozenset[int] = frozenset({0, 1, 2})
"""Label values of the 2022 edition: background, primary tumour (GTVp), lymph nodes (GTVn)."""

IMAGE_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".mha", ".nrrd")
"""File endings recognised for images, in order of preference."""

_LAYOUT_HELP = (
    "expected one of: 2020 (<PID>/<PID>_ct.nii.gz …), 2021 (flat <PID>_ct.nii.gz …), "
    "2022 (imagesTr/<PID>__CT.nii.gz …) or nnunet (imagesTr/<case>_0000.nii.gz + dataset.json)"
)


def parse_layout(layout: Layout | str) -> Layout:
    """Turn ``"2020"``, ``"2021"``, ``"2022"``, ``"nnunet"`` (or a :class:`Layout`) into a :class:`Layout`.

    Raises
    ------
    LayoutError
        The name is not a known layout.
    """
    if isinstance(layout, Layout):
        return layout
    text = str(layout).strip().lower()
    aliases = {"hecktor2020": "2020", "hecktor2021": "2021", "hecktor2022": "2022", "nnu-net": "nnunet"}
    try:
        return Layout(aliases.get(text, text))
    except ValueError:
        raise LayoutError(
            f"unknown dataset layout {layout!r}",
            hint="choose one of " + ", ".join(item.value for item in Layout),
        ) from None


def centre_from_id(patient_id: str) -> str:
    """The acquisition centre encoded in a patient id: the letters before the digits or hyphen.

    ``CHGJ007 → CHGJ``, ``CHUM-001 → CHUM``, ``MDA-123 → MDA``; ids without a
    leading letter give ``"UNKNOWN"``.
    """
    match = re.match(r"[A-Za-z]+", patient_id.strip())
    return match.group(0).upper() if match else "UNKNOWN"


def allowed_labels(layout: Layout | str | None) -> frozenset[int] | None:
    """The label values a layout allows (``None``: anything in 0..255, e.g. for nnU-Net)."""
    if layout is None:
        return None
    lay = parse_layout(layout)
    if lay is Layout.HECKTOR2022:
        return LABELS_2022
    if lay in (Layout.HECKTOR2020, Layout.HECKTOR2021):
        return LABELS_BINARY
    return None


def layout_paths(
    root: PathLike, patient_id: str, layout: Layout | str, *, suffix: str = ".nii.gz"
) -> tuple[Path, Path, Path]:
    """Where a layout puts one patient's CT, PET and label files.

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
    lay = parse_layout(layout)
    pid = patient_id
    if lay is Layout.HECKTOR2020:
        d = r / pid
        return d / f"{pid}_ct{suffix}", d / f"{pid}_pt{suffix}", d / f"{pid}_ct_gtvt{suffix}"
    if lay is Layout.HECKTOR2021:
        return r / f"{pid}_ct{suffix}", r / f"{pid}_pt{suffix}", r / f"{pid}_gtvt{suffix}"
    if lay is Layout.HECKTOR2022:
        images = r / "imagesTr"
        return images / f"{pid}__CT{suffix}", images / f"{pid}__PT{suffix}", r / "labelsTr" / f"{pid}{suffix}"
    images = r / "imagesTr"
    return images / f"{pid}_0000{suffix}", images / f"{pid}_0001{suffix}", r / "labelsTr" / f"{pid}{suffix}"


def _split_suffix(name: str) -> tuple[str, str] | None:
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], suffix
    return None


def _images_in(folder: Path) -> dict[str, Path]:
    """Image files in ``folder`` keyed by their name without the image suffix."""
    out: dict[str, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        split = _split_suffix(path.name)
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
    if path.exists():
        check_input_file(path, what="nnU-Net dataset.json")  # a FIFO would block the read
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


def detect_layout(root: PathLike, *, _depth: int = 0) -> Layout:
    """Recognise the layout of a dataset folder.

    Parameters
    ----------
    root
        Dataset root.

    Returns
    -------
    Layout
        nnU-Net if ``dataset.json`` and ``imagesTr`` exist; 2022 if ``imagesTr``
        (or ``imagesTs``) holds ``*__CT`` files; 2020 if sub-folders hold
        ``<PID>/<PID>_ct`` files; 2021 if the root holds ``*_ct`` files.

    Raises
    ------
    LayoutError
        The folder is missing or matches no layout.
    """
    r = _check_root(root)
    images = {**_images_in(r / "imagesTs"), **_images_in(r / "imagesTr")}
    if (r / "dataset.json").is_file() and (r / "imagesTr").is_dir():
        return Layout.NNUNET
    if any(stem.endswith("__CT") for stem in images):
        return Layout.HECKTOR2022
    if any(re.search(r"_\d{4}$", stem) for stem in images):
        raise LayoutError(
            "imagesTr holds nnU-Net style files (<case>_0000) but dataset.json is missing",
            path=r,
            hint="add dataset.json, or pass the layout explicitly",
        )
    for sub in sorted(r.iterdir()):
        if sub.is_dir() and (f"{sub.name}_ct" in _images_in(sub) or f"{sub.name}_pt" in _images_in(sub)):
            return Layout.HECKTOR2020
    if any(stem.endswith(("_ct", "_pt")) for stem in _images_in(r)):
        return Layout.HECKTOR2021
    if _depth == 0:  # e.g. the 2020 release keeps the cases in hecktor_nii/ beside bbox.csv
        for sub in sorted(r.iterdir()):
            if sub.is_dir() and not sub.name.startswith("."):
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


def _discover_2020(r: Path, strict: bool) -> list[tuple[str, Path, Path, Path | None]]:
    found = []
    for sub in sorted(r.iterdir()):
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        pid = sub.name
        files = _images_in(sub)
        ct, pet, label = files.get(f"{pid}_ct"), files.get(f"{pid}_pt"), files.get(f"{pid}_ct_gtvt")
        if ct is None and pet is None:
            if label is not None and strict:
                raise _missing(sub / f"{pid}_ct", "CT", pid)
            if label is None:
                logger.debug("skipping %s: no %s_ct / %s_pt images", sub, pid, pid)
                continue
        ct, pet = _pair(pid, ct, pet, sub / f"{pid}_ct", sub / f"{pid}_pt", strict)
        found.append((pid, ct, pet, label))
    return found


def _discover_2021(r: Path, strict: bool) -> list[tuple[str, Path, Path, Path | None]]:
    files = _images_in(r)
    pids = sorted(
        {stem[: -len(tail)] for stem in files for tail in ("_ct", "_pt", "_gtvt") if stem.endswith(tail)}
    )
    found = []
    for pid in pids:
        ct, pet, label = files.get(f"{pid}_ct"), files.get(f"{pid}_pt"), files.get(f"{pid}_gtvt")
        ct, pet = _pair(pid, ct, pet, r / f"{pid}_ct", r / f"{pid}_pt", strict)
        found.append((pid, ct, pet, label))
    return found


def _split_dirs(r: Path) -> tuple[Path, Path]:
    if (r / "imagesTr").is_dir():
        return r / "imagesTr", r / "labelsTr"
    return r / "imagesTs", r / "labelsTs"


def _discover_2022(r: Path, strict: bool) -> list[tuple[str, Path, Path, Path | None]]:
    image_dir, label_dir = _split_dirs(r)
    files = _images_in(image_dir)
    labels = _images_in(label_dir)
    pids = sorted({stem[:-4] for stem in files if stem.endswith(("__CT", "__PT"))})
    found = []
    for pid in pids:
        ct, pet = _pair(
            pid,
            files.get(f"{pid}__CT"),
            files.get(f"{pid}__PT"),
            image_dir / f"{pid}__CT",
            image_dir / f"{pid}__PT",
            strict,
        )
        found.append((pid, ct, pet, labels.get(pid)))
    return found


def _discover_nnunet(r: Path, strict: bool) -> list[tuple[str, Path, Path, Path | None]]:
    ct_channel, pet_channel, ending = _nnunet_channels(r)
    image_dir, label_dir = _split_dirs(r)
    pattern = re.compile(rf"^(.+)_(\d{{4}}){re.escape(ending)}$")
    by_case: dict[str, dict[int, Path]] = {}
    if image_dir.is_dir():
        for path in sorted(image_dir.iterdir()):
            match = pattern.match(path.name)
            if match and path.is_file():
                by_case.setdefault(match.group(1), {})[int(match.group(2))] = path
    found = []
    for case_id in sorted(by_case):
        channels = by_case[case_id]
        ct, pet = _pair(
            case_id,
            channels.get(ct_channel),
            channels.get(pet_channel),
            image_dir / f"{case_id}_{ct_channel:04d}",
            image_dir / f"{case_id}_{pet_channel:04d}",
            strict,
        )
        label = label_dir / f"{case_id}{ending}"
        found.append((case_id, ct, pet, label if label.is_file() else None))
    return found


def find_bbox_tables(root: PathLike, layout: Layout | str) -> list[Path]:
    """The box tables a layout keeps beside its images (root first, then the root's parent).

    2020: ``bbox.csv``; 2021: ``hecktor2021_bbox_*.csv`` (all of them); other layouts: none.
    """
    r = Path(root)
    lay = parse_layout(layout)
    pattern = {Layout.HECKTOR2020: "bbox.csv", Layout.HECKTOR2021: "hecktor2021_bbox_*.csv"}.get(lay)
    if pattern is None:
        return []
    for folder in (r, r.parent):
        tables = sorted(p for p in folder.glob(pattern) if p.is_file())
        if tables:
            return tables
    return []


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
) -> list[Case]:
    """Find every case of a dataset folder.

    Only file names are checked here (fast); use :func:`validate_case` to read
    and check the images themselves.

    Parameters
    ----------
    root
        Dataset root.
    layout
        Force a layout (``"2020"``, ``"2021"``, ``"2022"``, ``"nnunet"``);
        detected with :func:`detect_layout` if ``None``.
    bbox_table
        Box table to attach boxes from; by default the layout's own table if
        one is found (see :func:`find_bbox_tables`).
    require_labels
        Raise if a case has no label map.
    strict
        Raise if a case misses its CT or PET image. With ``False`` the case is
        kept with the path where the image was expected (and a warning is
        logged), so batch tools report that patient and finish the others.

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
        a box table is invalid, or a used box table has no row for a case.
    """
    r = _check_root(root)
    lay = detect_layout(r) if layout is None else parse_layout(layout)
    discover = {
        Layout.HECKTOR2020: _discover_2020,
        Layout.HECKTOR2021: _discover_2021,
        Layout.HECKTOR2022: _discover_2022,
        Layout.NNUNET: _discover_nnunet,
    }[lay]
    found = discover(r, strict)
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
    cases = []
    for pid, ct, pet, label in found:
        if require_labels and label is None:
            expected = layout_paths(r, pid, lay)[2]
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
                    hint="add a row for it, or pass the matching box table (--bbox on the command line, bbox_table= in Python)",
                )
            bbox = boxes[pid][0]
        cases.append(
            Case(
                patient_id=pid,
                centre=centre_from_id(pid),
                ct_path=ct,
                pet_path=pet,
                label_path=label,
                bbox=bbox,
                layout=lay,
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
