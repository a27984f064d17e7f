"""One case of the review: its statistics (on the CT grid) and its viewer data (a cropped display grid).

The viewer grid is axis-aligned in world (LPS) coordinates and covers the
head-and-neck box plus a margin, clipped to the CT: the box of the dataset's
table, else the one inference finds from the PET (:func:`~hecktorseg.preprocessing.box_from_pet`
with the default settings), else the whole CT. CT, PET and the label maps are
resampled onto it (linear, linear, nearest) and stored as bytes: CT through a
piecewise-linear HU code (:data:`CT_CODE_HU`, fine in the soft-tissue range), PET
as SUV / ``pet_scale``, and one byte of labels (prediction in bits 0–1, ground
truth in bits 2–3), each deflated and base64-encoded.
"""

from __future__ import annotations

import base64
import math
import zlib
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.errors import GeometryError
from hecktorseg.evaluation import dice, label_lesions
from hecktorseg.evaluation.visualize import LABEL_NAMES, _onto
from hecktorseg.io import BBox, Geometry, read_image
from hecktorseg.review.flags import CaseStats, ReviewSettings
from hecktorseg.typing import FloatArray

__all__ = ["CT_CODE_HU", "CaseInputs", "review_case"]

CT_CODE_HU: tuple[tuple[float, float], ...] = ((0, -1024.0), (28, -160.0), (228, 240.0), (255, 3071.0))
"""``(code, HU)`` breakpoints of the CT byte code: 2 HU per step from −160 to 240 HU, coarse outside."""

_PRED_BITS, _GT_SHIFT = 0b11, 2


@attrs.frozen
class CaseInputs:
    """The files of one case to review."""

    patient_id: str
    centre: str
    ct_path: Path
    pet_path: Path
    pred_path: Path
    label_path: Path | None = None
    uncertainty_path: Path | None = None
    bbox: BBox | None = None


def _same_grid(image: sitk.Image, ct: sitk.Image) -> bool:
    return Geometry.from_image(image).is_close(Geometry.from_image(ct))


def _pack(array: npt.NDArray[np.uint8]) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 6)).decode("ascii")


def _ct_codes(hu: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    codes, values = zip(*CT_CODE_HU, strict=True)
    out: npt.NDArray[np.uint8] = np.rint(np.interp(hu, values, codes)).astype(np.uint8)
    return out


def _box(inputs: CaseInputs, pet: sitk.Image, ct: Geometry) -> tuple[FloatArray, FloatArray]:
    """The head-and-neck box (world lower, upper corners) clipped to the CT's bounds."""
    from hecktorseg.preprocessing import box_from_pet

    lo, hi = ct.world_bounds()
    box = inputs.bbox
    if box is None:
        try:
            box = box_from_pet(pet, patient_id=inputs.patient_id)
        except GeometryError:
            box = None
    if box is None:
        return lo, hi
    lower: FloatArray = np.maximum(box.lower, lo)
    upper: FloatArray = np.minimum(box.upper, hi)
    if np.any(lower >= upper):  # the box misses the CT: show the whole CT
        return lo, hi
    return lower, upper


def _touches(
    mask: npt.NDArray[np.uint8],
    ct: Geometry,
    lower: npt.NDArray[Any],
    upper: npt.NDArray[Any],
    offset: tuple[slice, ...],
) -> bool:
    """Whether a foreground voxel of ``mask`` (a crop at ``offset``) lies within one voxel of a face of the box."""
    zyx = np.argwhere(mask > 0) + np.array([o.start for o in offset])
    if zyx.size == 0:
        return False
    world = ct.index_to_world(zyx[:, ::-1].astype(np.float64))
    tol = np.abs(ct.direction_matrix) @ np.asarray(ct.spacing)
    return bool(np.any(world.min(axis=0) < lower + tol) or np.any(world.max(axis=0) > upper - tol))


def _display_grid(
    lower: npt.NDArray[Any], upper: npt.NDArray[Any], ct: Geometry, cfg: ReviewSettings
) -> Geometry:
    lo, hi = lower - cfg.margin_mm, upper + cfg.margin_mm
    ct_lo, ct_hi = ct.world_bounds()
    lo, hi = np.maximum(lo, ct_lo), np.minimum(hi, ct_hi)
    in_plane = max(min(ct.spacing[0], ct.spacing[1]), cfg.min_spacing_mm)
    spacing = np.array([in_plane, in_plane, max(ct.spacing[2], cfg.min_spacing_mm)])
    size = np.maximum(np.ceil((hi - lo) / spacing - 1e-6), 1)
    if size.prod() > cfg.max_voxels:
        spacing = spacing * (size.prod() / cfg.max_voxels) ** (1 / 3)
        size = np.maximum(np.ceil((hi - lo) / spacing - 1e-6), 1)
    return Geometry(size=tuple(int(s) for s in size), spacing=tuple(spacing), origin=tuple(lo + spacing / 2))


def _crop(*masks: npt.NDArray[np.uint8]) -> tuple[slice, ...]:
    """The (z, y, x) bounding box of the foreground of all ``masks`` (empty slices if there is none)."""
    union = np.zeros(masks[0].shape, dtype=bool)
    for mask in masks:
        union |= mask > 0
    box = []
    for axis in range(3):
        hits = np.flatnonzero(union.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1) if hits.size else slice(0, 0))
    return tuple(box)


def _suvmax(pet: sitk.Image, pred_image: sitk.Image, pred: npt.NDArray[np.uint8]) -> float:
    """Highest PET SUV (linear onto the CT grid) in the GTVp, resampling only the GTVp's bounding box."""
    box = _crop((pred == 1).astype(np.uint8))
    if box[0].stop == 0:
        return math.nan
    index = [int(box[a].start) for a in (2, 1, 0)]
    size = [int(box[a].stop - box[a].start) for a in (2, 1, 0)]
    region = sitk.RegionOfInterest(pred_image, size, index)
    return float(_onto(pet, region, nearest=False)[pred[box] == 1].max())


def _lesions(
    mask: npt.NDArray[np.uint8],
    source: str,
    ct: Geometry,
    display: Geometry,
    voxel_ml: float,
    offset: tuple[slice, ...],
) -> tuple[list[dict[str, Any]], list[float]]:
    """Each 26-connected component of each label of ``mask`` (a crop starting at ``offset`` of the CT
    grid): where to jump to (display index z, y, x) and its volume."""
    out, volumes = [], []
    start = np.array([o.start for o in offset])
    for value, name in LABEL_NAMES.items():
        labels, n = label_lesions(mask == value)
        for k in range(1, n + 1):
            coords = np.argwhere(labels == k)
            # the component's voxel nearest its centroid: every plane through it cuts the component
            centre = coords[int(np.argmin(((coords - coords.mean(axis=0)) ** 2).sum(axis=1)))] + start
            world = ct.index_to_world(centre[::-1].astype(np.float64))
            index = np.rint(display.world_to_index(world)).astype(int)
            index = np.clip(index, 0, np.asarray(display.size) - 1)[::-1]
            ml = len(coords) * voxel_ml
            volumes.append(ml)
            out.append({"source": source, "label": value, "name": name, "ml": ml, "zyx": index.tolist()})
    return out, volumes


def review_case(
    inputs: CaseInputs, cfg: ReviewSettings
) -> tuple[CaseStats, dict[str, float], dict[str, Any]]:
    """Measure one case and build its viewer data.

    Returns
    -------
    tuple
        ``(stats, metrics, payload)``: the statistics, the Dice per label against the
        ground truth (empty without one), and the viewer data (JSON-ready).

    Raises
    ------
    HecktorsegError
        An image cannot be read, or the prediction is not on the CT's grid.
    """
    ct = read_image(inputs.ct_path, kind="ct")
    pet = read_image(inputs.pet_path, kind="pet")
    pred_image = read_image(inputs.pred_path, kind="label")
    ct_geo = Geometry.from_image(ct)
    if not _same_grid(pred_image, ct):
        got = Geometry.from_image(pred_image)
        raise GeometryError(
            f"prediction is not on the CT grid (size {got.size}, spacing {tuple(round(s, 3) for s in got.spacing)}"
            f" against {ct_geo.size}, {tuple(round(s, 3) for s in ct_geo.spacing)})",
            path=inputs.pred_path,
            hint="give the predictions hecktorseg predict wrote (on each CT's grid)",
        )
    pred = sitk.GetArrayFromImage(pred_image).astype(np.uint8)
    voxel_ml = ct_geo.voxel_volume / 1000.0
    lower, upper = _box(inputs, pet, ct_geo)
    display = _display_grid(lower, upper, ct_geo, cfg)
    gt_image = read_image(inputs.label_path, kind="label") if inputs.label_path is not None else None
    gt: npt.NDArray[np.uint8] | None = None
    if gt_image is not None:
        same = _same_grid(gt_image, ct)
        gt = (sitk.GetArrayFromImage(gt_image) if same else _onto(gt_image, ct, nearest=True)).astype(
            np.uint8
        )
    # everything on the full CT grid happens inside the foreground's bounding box (a CT may hold 30 M voxels)
    box = _crop(pred) if gt is None else _crop(pred, gt)
    lesions, volumes = _lesions(pred[box], "prediction", ct_geo, display, voxel_ml, box)

    uncertain_ml = None
    if inputs.uncertainty_path is not None:
        unc = read_image(inputs.uncertainty_path, kind="image")
        variance = sitk.GetArrayViewFromImage(unc) if _same_grid(unc, ct) else _onto(unc, ct, nearest=False)
        uncertain_ml = float((variance > cfg.uncertain_std**2).sum()) * voxel_ml
    stats = CaseStats(
        gtvp_ml=float((pred[box] == 1).sum()) * voxel_ml,
        gtvn_ml=float((pred[box] == 2).sum()) * voxel_ml,
        gtvn_components=sum(1 for lesion in lesions if lesion["label"] == 2),
        suvmax_gtvp=_suvmax(pet, pred_image, pred),
        component_ml=tuple(sorted(volumes, reverse=True)),
        touches_border=_touches(pred[box], ct_geo, lower, upper, box),
        uncertain_ml=uncertain_ml,
    )

    reference = display.empty_image(sitk.sitkUInt8)
    ct_d = _ct_codes(_onto(ct, reference, nearest=False))  # the grid lies within the CT: nothing is filled
    pet_d = _onto(pet, reference, nearest=False)
    pet_scale = max(float(pet_d.max()), 1e-3) / 255.0
    labels: npt.NDArray[np.uint8] = np.bitwise_and(
        _onto(pred_image, reference, nearest=True).astype(np.uint8), np.uint8(_PRED_BITS)
    )
    metrics: dict[str, float] = {}
    if gt_image is not None and gt is not None:
        p, g = pred[box], gt[box]
        for value, name in LABEL_NAMES.items():
            if (g == value).any() or (p == value).any():
                metrics[f"dice_{name}"] = dice(p == value, g == value)
        gt_lesions, _ = _lesions(g, "ground truth", ct_geo, display, voxel_ml, box)
        lesions += gt_lesions
        gt_display = _onto(gt_image, reference, nearest=True).astype(np.uint8) & _PRED_BITS
        labels = labels | (gt_display << _GT_SHIFT).astype(np.uint8)
    payload = {
        "id": inputs.patient_id,
        "shape": list(display.shape_zyx),
        "spacing": [display.spacing[2], display.spacing[1], display.spacing[0]],
        "origin": list(display.origin),
        "hasGt": inputs.label_path is not None,
        "petScale": pet_scale,
        "ct": _pack(ct_d),
        "pet": _pack(np.rint(pet_d / pet_scale).clip(0, 255).astype(np.uint8)),
        "labels": _pack(labels),
        "lesions": lesions,
    }
    return stats, metrics, payload
