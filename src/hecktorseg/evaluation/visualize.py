"""PNG overlays for checking segmentations by eye: CT and PET slices with contours.

Each picture has two rows (CT, PET) and three columns (axial, coronal,
sagittal), cut through the ground truth (else the prediction, else the image
centre): through its primary tumour if it has one, else its lymph nodes, at
the labelled voxel nearest their centroid, so that each slice shows a
contour. Each structure has its own colour — GTVp / primary tumour (label 1) green, GTVn / lymph nodes (label 2) magenta
(:data:`LABEL_COLOURS`) — and the source its own line: ground truth solid,
prediction dashed (:data:`SOURCE_STYLES`); a legend under the picture names
what is drawn. Everything is resampled onto the CT grid in world
coordinates, so inputs on different grids line up; pixels are drawn at their
physical size (anisotropic voxels are not stretched).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import DataError, HecktorsegError, LayoutError
from hecktorseg.evaluation.scoring_2022 import LABEL_NAMES_2022
from hecktorseg.io import Case, Layout, atomic_path, ensure_output_dir, read_image
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = [
    "LABEL_COLOURS",
    "LABEL_NAMES",
    "SOURCE_STYLES",
    "ImageOrPath",
    "find_visualization_cases",
    "visualize_case",
    "visualize_dataset",
]

logger = logging.getLogger(__name__)

ImageOrPath: TypeAlias = "sitk.Image | str | Path"
"""A SimpleITK image or the path of one."""

_LineStyle: TypeAlias = Literal["solid", "dashed"]

LABEL_COLOURS: dict[int, str] = {1: "#00d000", 2: "#ff33ff"}
"""Contour colour of each label value (GTVp, the primary tumour, green; GTVn, the lymph nodes, magenta)."""

LABEL_NAMES: dict[int, str] = LABEL_NAMES_2022
"""Legend name per label value (label 1 is the primary tumour, GTVt in 2020/2021)."""

SOURCE_STYLES: dict[str, _LineStyle] = {"ground truth": "solid", "prediction": "dashed"}
"""Contour line style per source."""


def _legend_entries(
    gt_values: set[int] | None, pred_values: set[int] | None
) -> list[tuple[str, str, _LineStyle]]:
    """``(text, colour, linestyle)`` of each drawn (source, label) pair, labels first."""
    entries = []
    for value, name in LABEL_NAMES.items():
        for source, values in (("ground truth", gt_values), ("prediction", pred_values)):
            if values is not None and value in values:
                entries.append((f"{name} {source}", LABEL_COLOURS[value], SOURCE_STYLES[source]))
    return entries


def _warn_undrawn(values: set[int] | None, where: str | Path) -> None:
    """Warn about label values without a colour in :data:`LABEL_COLOURS` (their contours are not drawn)."""
    undrawn = sorted((values or set()) - {0} - set(LABEL_COLOURS))
    if undrawn:
        logger.warning(
            "%s: label value%s %s not drawn (contours are drawn for %s)",
            where,
            "s" if len(undrawn) > 1 else "",
            ", ".join(map(str, undrawn)),
            " and ".join(f"{v} ({LABEL_NAMES.get(v, '?')})" for v in LABEL_COLOURS),
        )


def _as_image(value: ImageOrPath, kind: str) -> sitk.Image:
    if isinstance(value, sitk.Image):
        return value
    return read_image(value, kind=kind)  # type: ignore[arg-type]


def _onto(image: sitk.Image, reference: sitk.Image, *, nearest: bool) -> npt.NDArray[np.float32]:
    interp = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    out = sitk.Resample(
        sitk.Cast(image, sitk.sitkFloat32), reference, sitk.Transform(), interp, 0.0, sitk.sitkFloat32
    )
    array: npt.NDArray[np.float32] = sitk.GetArrayFromImage(out)
    return array


def _centre_index(
    masks: Sequence[npt.NDArray[np.float32] | None], shape: tuple[int, ...]
) -> tuple[int, int, int]:
    """Where the three slices cross: in the first non-empty mask, the primary tumour (label 1) if
    there is one, else all its labels; the labelled voxel nearest their centroid, so that every
    slice cuts a structure (the centroid of lymph nodes on both sides of the neck lies between them)."""
    for mask in masks:
        if mask is not None and mask.any():
            primary = mask == 1
            coords = np.argwhere(primary if primary.any() else mask > 0)
            distance = ((coords - coords.mean(axis=0)) ** 2).sum(axis=1)
            c = coords[int(np.argmin(distance))]
            return (int(c[0]), int(c[1]), int(c[2]))
    return (shape[0] // 2, shape[1] // 2, shape[2] // 2)


def visualize_case(
    ct: ImageOrPath | Case,
    pet: ImageOrPath | None = None,
    label: ImageOrPath | None = None,
    prediction: ImageOrPath | None = None,
    out_png: PathLike | None = None,
    *,
    title: str | None = None,
    ct_window: tuple[float, float] = (-250.0, 250.0),
    pet_max: float | None = None,
    dpi: int = 100,
) -> Path:
    """Draw CT and PET slices through the tumour with the contours, and save a PNG atomically.

    Two call forms: ``visualize_case(ct, pet, label, prediction, out_png)`` with
    images or paths, or ``visualize_case(case, out_png, prediction=...)`` with a
    :class:`hecktorseg.io.Case` (its CT, PET and label are used; the second
    positional argument is then the PNG path).

    Parameters
    ----------
    ct, pet
        The images (SimpleITK images or paths); PET is resampled (linear) onto the CT grid.
        Or a :class:`~hecktorseg.io.Case` and the PNG path.
    label
        Ground truth (solid contours), resampled nearest onto the CT grid.
    prediction
        Prediction (dashed contours), resampled nearest onto the CT grid. Label values
        without a colour in :data:`LABEL_COLOURS` (anything but 1 and 2) are not drawn, and a
        warning names them.
    out_png
        Destination PNG (parent folders are created; written atomically).
    title
        Figure title (default: the patient id for a case).
    ct_window
        CT display window in HU (lower, upper).
    pet_max
        Upper end of the PET display range (SUV); default: the 99.5th percentile of the shown slices.
    dpi
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        ``out_png``.

    Raises
    ------
    DataError
        Unreadable images, or no PET / PNG path given.
    """
    from matplotlib.figure import Figure

    if isinstance(ct, Case):
        case = ct
        if out_png is None:
            out_png = pet if isinstance(pet, (str, Path)) else None
        ct, pet = case.ct_path, case.pet_path
        label = label if label is not None else case.label_path
        title = title if title is not None else case.patient_id
    if pet is None or out_png is None:
        raise DataError(
            "visualize_case needs a PET image and a PNG path", hint="pass pet=... and out_png=..."
        )
    ct_img = _as_image(ct, "ct")
    pet_img = _as_image(pet, "pet")
    ct_arr = sitk.GetArrayFromImage(ct_img).astype(np.float32)
    pet_arr = _onto(pet_img, ct_img, nearest=False)
    gt_arr = _onto(_as_image(label, "label"), ct_img, nearest=True) if label is not None else None
    pr_arr = _onto(_as_image(prediction, "label"), ct_img, nearest=True) if prediction is not None else None
    cz, cy, cx = _centre_index([gt_arr, pr_arr], ct_arr.shape)
    sx, sy, sz = (float(s) for s in ct_img.GetSpacing())
    nz, ny, nx = ct_arr.shape

    # (name, slicer, extent in mm (left, right, bottom, top), origin)
    views: list[tuple[str, tuple[slice | int, ...], tuple[float, float, float, float]]] = [
        (f"axial z={cz}", (cz, slice(None), slice(None)), (0, nx * sx, ny * sy, 0)),
        (f"coronal y={cy}", (slice(None), cy, slice(None)), (0, nx * sx, 0, nz * sz)),
        (f"sagittal x={cx}", (slice(None), slice(None), cx), (0, ny * sy, 0, nz * sz)),
    ]
    pet_slices = [pet_arr[s] for _, s, _ in views]
    if pet_max is None:
        pet_max = float(np.percentile(np.concatenate([p.ravel() for p in pet_slices]), 99.5))
        pet_max = max(pet_max, 1e-3)

    # a bare Figure (Agg canvas) leaves pyplot's global state and backend alone
    fig = Figure(figsize=(12, 8))
    axes = fig.subplots(2, 3, squeeze=False)
    for col, (name, sl, extent) in enumerate(views):
        origin = "upper" if col == 0 else "lower"
        for row, (array, cmap, vmin, vmax) in enumerate(
            ((ct_arr, "gray", ct_window[0], ct_window[1]), (pet_arr, "hot", 0.0, pet_max))
        ):
            ax = axes[row][col]
            ax.imshow(array[sl], cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, origin=origin)
            for mask, style in (
                (gt_arr, SOURCE_STYLES["ground truth"]),
                (pr_arr, SOURCE_STYLES["prediction"]),
            ):
                if mask is None:
                    continue
                plane = mask[sl]
                for value, colour in LABEL_COLOURS.items():
                    binary = (plane == value).astype(np.float32)
                    if binary.any() and binary.min() < 1:
                        ax.contour(
                            binary,
                            levels=[0.5],
                            colors=colour,
                            linewidths=1.2,
                            linestyles=style,
                            extent=extent,
                            origin=origin,
                        )
            ax.set_title(f"{'CT' if row == 0 else 'PET'} {name}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    gt_values = None if gt_arr is None else {int(v) for v in np.unique(gt_arr)}
    pr_values = None if pr_arr is None else {int(v) for v in np.unique(pr_arr)}
    for source, given, values in (("ground truth", label, gt_values), ("prediction", prediction, pr_values)):
        _warn_undrawn(values, given if isinstance(given, (str, Path)) else f"{title or out_png}: {source}")
    entries = _legend_entries(gt_values, pr_values)
    if title:
        fig.suptitle(title)
    if entries:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, linestyle=ls, linewidth=2.0) for _, c, ls in entries]
        fig.legend(handles, [t for t, _, _ in entries], loc="lower center", ncol=len(entries), frameon=False)
        fig.tight_layout(rect=(0.0, 0.05, 1.0, 1.0))
    else:
        fig.tight_layout()
    dest = Path(out_png)
    with atomic_path(dest) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return dest


def _single_case(folder: Path) -> tuple[str, Path, Path, Path | None] | None:
    """A folder holding one case's ``<PID>_ct`` / ``<PID>_pt`` (and label) files."""
    for ct_path in sorted(folder.glob("*_ct.nii*")):
        pid = ct_path.name.split("_ct.nii")[0]
        pet = next(iter(sorted(folder.glob(f"{pid}_pt.nii*"))), None)
        if pet is None:
            continue
        label = next(
            (
                p
                for pattern in (f"{pid}_ct_gtvt.nii*", f"{pid}_gtvt.nii*")
                for p in sorted(folder.glob(pattern))
            ),
            None,
        )
        return (pid, ct_path, pet, label)
    return None


def find_visualization_cases(
    case_or_dir: PathLike, *, layout: Layout | str | None = None
) -> list[tuple[str, Path, Path, Path | None]]:
    """The cases (id, CT, PET, label or None) of a dataset, a preprocessed dataset or one case folder.

    Raises
    ------
    LayoutError
        Nothing recognisable in the folder.
    """
    from hecktorseg.io import discover_cases

    root = Path(case_or_dir)
    if not root.is_dir():
        raise DataError("folder not found", path=root, hint="give a dataset folder or one case's folder")
    if layout is None and len(list(root.glob("*_ct.nii*"))) == 1:
        single = _single_case(root)  # one case's folder (a 2020 patient folder, a lone flat case)
        if single is not None:
            return [single]
    try:
        cases = discover_cases(root, layout=layout, strict=False)  # a missing image fails that case only
    except LayoutError:
        if layout is not None:
            raise
        cases = []
    if cases:
        return [(c.patient_id, c.ct_path, c.pet_path, c.label_path) for c in cases]
    single = _single_case(root)
    if single is None:
        raise LayoutError(
            "found no case to draw",
            path=root,
            hint="give a dataset folder, a preprocessed folder or one case folder with <PID>_ct/<PID>_pt files",
        )
    return [single]


def visualize_dataset(
    case_or_dir: PathLike,
    out_dir: PathLike,
    *,
    predictions_dir: PathLike | None = None,
    layout: Layout | str | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    errors: dict[str, str] | None = None,
) -> list[Path]:
    """Draw ``OUT_DIR/<PID>.png`` for every case of a dataset (or one case folder).

    Parameters
    ----------
    case_or_dir
        A dataset in any layout hecktorseg reads, a preprocessed dataset, or one case's folder.
    out_dir
        Where the PNGs go.
    predictions_dir
        Folder of ``<PID>.nii.gz`` predictions to overlay (dashed; cases without one are drawn without).
    layout
        Force the dataset layout.
    force
        Redraw existing PNGs (otherwise they are skipped).
    progress
        ``callback(completed, total, patient_id)``.
    errors
        If given, a case that cannot be drawn (unreadable image, …) is recorded
        here as ``patient id → message`` and the other cases are drawn; without
        it the first such case raises.

    Returns
    -------
    list[pathlib.Path]
        The PNGs written or already present.

    Raises
    ------
    HecktorsegError
        The folder holds no case, the output folder cannot be written, or (without
        ``errors``) a case cannot be drawn.
    """
    from hecktorseg.evaluation.evaluate import find_prediction

    cases = find_visualization_cases(case_or_dir, layout=layout)
    out_root = ensure_output_dir(out_dir)
    written: list[Path] = []
    for i, (pid, ct_path, pet_path, label_path) in enumerate(cases):
        dest = out_root / f"{pid}.png"
        if dest.is_file() and not force:
            logger.info("%s exists; skipped", dest)
            written.append(dest)
        else:
            pred = find_prediction(predictions_dir, pid) if predictions_dir is not None else None
            if predictions_dir is not None and pred is None:
                logger.warning("case %s: no prediction in %s", pid, predictions_dir)
            try:
                visualize_case(ct_path, pet_path, label_path, pred, dest, title=pid)
            except HecktorsegError as exc:
                if errors is None:
                    raise
                errors[pid] = str(exc)
                logger.error("case %s not drawn: %s", pid, exc)
            else:
                written.append(dest)
        if progress is not None:
            progress(i + 1, len(cases), pid)
    return written
