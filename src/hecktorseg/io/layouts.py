"""Dataset layouts: where each case's files lie and case discovery — driven by the layout records.

Detection and table finding live in :mod:`hecktorseg.io.layout_detect`, ``dataset.json`` in
:mod:`hecktorseg.io.nnunet` and case checks in :mod:`hecktorseg.io.validate`; their public
names are re-exported here.

What each layout looks like is described once, as data, in
:mod:`hecktorseg.io.layout_specs` (:data:`~hecktorseg.io.layout_specs.LAYOUT_SPECS`);
this module reads those records. Images may end in any of
:data:`~hecktorseg.io.layout_specs.IMAGE_SUFFIXES` (``.nii.gz``, ``.nii``, ``.mha``,
``.mhd``, ``.nrrd``). Clinical tables (2025/2026) become :attr:`Case.clinical`, and
the centre of each case follows :func:`hecktorseg.io.centre_of`.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from hecktorseg.errors import DataError, LayoutError
from hecktorseg.io.bbox import BBox
from hecktorseg.io.case import Case, Layout
from hecktorseg.io.clinical import ClinicalInfo, centre_from_id, centre_of, merge_clinical_tables
from hecktorseg.io.layout_detect import (
    _LAYOUT_HELP,
    _check_root,
    _images_in,
    _load_tables,
    _patient_folders,
    _scheme_matches,
    detect_layout,
    find_bbox_tables,
    find_clinical_tables,
)
from hecktorseg.io.layout_specs import (
    IMAGE_SUFFIXES,
    LABELS_BINARY,
    LABELS_GTVP_GTVN,
    FileScheme,
    LayoutSpec,
    layout_spec,
    parse_layout,
)
from hecktorseg.io.nnunet import _nnunet_channels, read_nnunet_dataset_json
from hecktorseg.io.validate import allowed_labels, validate_case
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


def _tails(root: Path, scheme: FileScheme) -> tuple[str, str, str]:
    """The CT, PET and label name tails of a scheme (nnU-Net: channels from ``dataset.json``)."""
    if scheme.channels_from_dataset_json and (root / "dataset.json").is_file():
        ct_channel, pet_channel, _ = _nnunet_channels(root)
        return f"_{ct_channel:04d}", f"_{pet_channel:04d}", FileScheme.tail(scheme.label)
    return FileScheme.tail(scheme.ct), FileScheme.tail(scheme.pet), FileScheme.tail(scheme.label)


def _missing(path_stem: Path, what: str, pid: str) -> DataError:
    expected = path_stem.with_name(path_stem.name + IMAGE_SUFFIXES[0])
    others = ", ".join(IMAGE_SUFFIXES[1:])
    return DataError(
        f"patient {pid}: {what} image not found (also looked for {others})",
        path=expected,
        hint=f"add the {what} image, or remove the patient's other files from the dataset",
    )


_OnMissing = Literal["raise", "warn", "keep"]
"""What discovery does about a missing CT or PET: raise, warn and keep the case, or keep it quietly."""


def _pair(
    pid: str, ct: Path | None, pet: Path | None, ct_stem: Path, pet_stem: Path, on_missing: _OnMissing
) -> tuple[Path, Path]:
    """The CT and PET paths; a missing one raises or becomes its expected path (see ``_OnMissing``)."""
    found: list[Path] = []
    for path, stem, what in ((ct, ct_stem, "CT"), (pet, pet_stem, "PET")):
        if path is not None:
            found.append(path)
            continue
        error = _missing(stem, what, pid)
        if on_missing == "raise":
            raise error
        if on_missing == "warn":
            logger.warning("%s", error)
        found.append(stem.with_name(stem.name + IMAGE_SUFFIXES[0]))
    return found[0], found[1]


_Found = list[tuple[str, Path, Path, Path | None]]


def _discover_folders(images: Path, tails: tuple[str, str, str], on_missing: _OnMissing) -> _Found:
    """Cases of a scheme with one folder per patient (label map in the same folder)."""
    ct_tail, pet_tail, label_tail = tails
    found: _Found = []
    for sub in _patient_folders(images):
        pid = sub.name
        files = _images_in(sub)
        ct, pet, label = files.get(pid + ct_tail), files.get(pid + pet_tail), files.get(pid + label_tail)
        if ct is None and pet is None:
            if label is not None and on_missing == "raise":
                raise _missing(sub / f"{pid}{ct_tail}", "CT", pid)
            if label is None:
                logger.debug("skipping %s: no %s%s / %s%s images", sub, pid, ct_tail, pid, pet_tail)
                continue
        ct, pet = _pair(pid, ct, pet, sub / f"{pid}{ct_tail}", sub / f"{pid}{pet_tail}", on_missing)
        found.append((pid, ct, pet, label))
    return found


def _discover_flat(images: Path, labels: Path, tails: tuple[str, str, str], on_missing: _OnMissing) -> _Found:
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
            on_missing,
        )
        found.append((pid, ct, pet, label_files.get(pid + label_tail)))
    return found


def _scheme_of(root: Path, spec: LayoutSpec) -> FileScheme:
    """The first of a layout's arrangements whose files are present (else its canonical one)."""
    return next((sc for sc in spec.schemes if _scheme_matches(root, sc)), spec.schemes[0])


def _discover(root: Path, scheme: FileScheme, on_missing: _OnMissing) -> _Found:
    """Cases of one arrangement of a layout."""
    images, labels = _dirs(root, scheme)
    tails = _tails(root, scheme)
    if scheme.patient_folders:
        return _discover_folders(images, tails, on_missing)
    return _discover_flat(images, labels, tails, on_missing)


def _expected_label(root: Path, scheme: FileScheme, pid: str) -> Path:
    images, labels = _dirs(root, scheme)
    folder = images / pid if scheme.patient_folders else labels
    return folder / f"{_fmt(scheme.label, pid)}{IMAGE_SUFFIXES[0]}"


def discover_cases(
    root: PathLike,
    *,
    layout: Layout | str | None = None,
    bbox_table: PathLike | None = None,
    require_labels: bool = False,
    strict: bool = True,
    clinical_tables: Sequence[PathLike] | None = None,
    require_images: bool = True,
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
    require_images
        With ``False``, for tools that read only the label maps (evaluation): a case
        with a label map but no CT or PET is kept quietly, with the paths where the
        images were expected, whatever ``strict`` says.

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
    found = _discover(r, scheme, "keep" if not require_images else "raise" if strict else "warn")
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
                    hint="add a row for it, or pass the matching box table (bbox_table=)",
                )
            bbox = boxes[pid][0]
        key = unicodedata.normalize("NFC", pid)  # macOS writes folder names decomposed (NFD)
        info = clinical.get(key, ClinicalInfo())
        if clinical_paths and key not in clinical:
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
