"""Finding what to score: the ground-truth label maps of a dataset or label folder, and each case's prediction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import attrs

from hecktorseg.errors import DataError, LayoutError
from hecktorseg.io import BBox, Layout, image_files
from hecktorseg.io.layout_specs import split_image_suffix
from hecktorseg.typing import PathLike

__all__ = [
    "GroundTruthCase",
    "find_ground_truth",
    "find_prediction",
]


@attrs.frozen
class GroundTruthCase:
    """One ground-truth label map to score against.

    Attributes
    ----------
    patient_id
        The case.
    label_path
        Its label map.
    bbox
        Its box (world mm), from the dataset's or the given table.
    """

    patient_id: str
    label_path: Path
    bbox: BBox | None = None


def _strip_suffix(name: str) -> str | None:
    split = split_image_suffix(name)
    return None if split is None else split[0]


def find_prediction(pred_dir: PathLike, patient_id: str) -> Path | None:
    """The prediction file ``<pred_dir>/<patient_id>.nii.gz`` (or another image suffix), if any.

    Raises
    ------
    DataError
        The patient's prediction in two files (e.g. ``.nii.gz`` and ``.mha``).
    """
    return image_files(pred_dir).get(patient_id)


def _label_folder(root: Path, boxes: Mapping[str, BBox]) -> list[GroundTruthCase]:
    return [GroundTruthCase(pid, path, boxes.get(pid)) for pid, path in sorted(image_files(root).items())]


def find_ground_truth(
    gt_dir: PathLike,
    *,
    layout: Layout | str | None = None,
    bbox_table: PathLike | None = None,
) -> list[GroundTruthCase]:
    """The ground-truth label maps of a dataset folder or of a folder of ``<PID>.nii.gz`` label files.

    Parameters
    ----------
    gt_dir
        A dataset in any layout :func:`hecktorseg.io.discover_cases` reads
        (cases without a label are skipped; only the label maps are needed, so a
        case without its CT or PET is still found), a HECKTOR 2025/2026 Task 1
        folder holding only the ``<PID>/<PID>.nii.gz`` label maps, or a folder of
        label files named by patient id, as the organisers kept them.
    layout
        Force a dataset layout instead of detecting it.
    bbox_table
        A box table (``PatientID,x1,x2,y1,y2,z1,z2``) overriding / completing the dataset's.

    Raises
    ------
    DataError, LayoutError
        The folder does not exist or holds neither a dataset nor label files.
    """
    from hecktorseg.io import discover_cases, read_bbox_table

    root = Path(gt_dir)
    if not root.is_dir():
        raise DataError("ground-truth folder not found", path=root, hint="give a dataset or a label folder")
    # only the label maps are read here: a case without its CT or PET is still scored
    try:
        cases = discover_cases(root, layout=layout, bbox_table=bbox_table, strict=False, require_images=False)
    except LayoutError:
        if layout is not None:
            raise
        try:  # label maps alone in patient folders: <PID>/<PID>.nii.gz, as the 2025/2026 layout keeps them
            cases = discover_cases(
                root, layout=Layout.HECKTOR2025, bbox_table=bbox_table, require_images=False
            )
        except LayoutError:
            cases = []
    labelled = [
        GroundTruthCase(c.patient_id, c.label_path, c.bbox) for c in cases if c.label_path is not None
    ]
    if labelled:
        return sorted(labelled, key=lambda g: g.patient_id)
    boxes = read_bbox_table(bbox_table) if bbox_table is not None else {}
    folder = _label_folder(root, boxes)
    if not folder:
        raise LayoutError(
            "found no ground-truth label maps",
            path=root,
            hint="give a dataset folder (2020/2021/2022/2025/2026/nnU-Net layout) or a folder of "
            "<PID>.nii.gz label files",
        )
    return folder
