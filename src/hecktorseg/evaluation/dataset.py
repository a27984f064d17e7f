"""Scoring a folder of predictions against a ground-truth dataset: :func:`evaluate`."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError, LayoutError
from hecktorseg.evaluation.scoring import (
    EDITIONS,
    LABEL_NAMES_2022,
    CaseScore,
    Edition,
    missing_score,
    score_2020,
    score_2021,
    score_2022,
    summarize,
)
from hecktorseg.io import IMAGE_SUFFIXES, BBox, Layout, allowed_labels, atomic_write_text, read_image
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = [
    "IMAGE_SUFFIXES",
    "EvaluationResult",
    "GroundTruthCase",
    "evaluate",
    "find_ground_truth",
    "find_prediction",
    "metric_columns",
]

logger = logging.getLogger(__name__)


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


@attrs.frozen
class EvaluationResult:
    """What :func:`evaluate` found.

    Attributes
    ----------
    edition
        ``"2020"``, ``"2021"`` or ``"2022"``.
    cases
        One :class:`~hecktorseg.evaluation.CaseScore` per ground-truth case, sorted by id.
    summary
        The summary (see :func:`~hecktorseg.evaluation.summarize`).
    per_case_csv, summary_json
        The files written, if an output folder was given.
    """

    edition: str
    cases: tuple[CaseScore, ...]
    summary: dict[str, Any]
    per_case_csv: Path | None = None
    summary_json: Path | None = None

    @property
    def mean_dice(self) -> float:
        """``summary["mean_dice"]``: the mean per-case Dice (NaN if there are no cases)."""
        return float(self.summary.get("mean_dice", math.nan))

    @property
    def per_case_dice(self) -> dict[str, float]:
        """Patient id → Dice (2022: the mean over the labels present)."""
        return {c.patient_id: float(c.metrics.get("dice", math.nan)) for c in self.cases}

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per case (``patient_id``, ``status``, the metrics, ``message``)."""
        columns = metric_columns(self.edition)
        return [
            {
                "patient_id": c.patient_id,
                "status": c.status,
                **{k: c.metrics.get(k, math.nan) for k in columns},
                "message": c.message,
            }
            for c in self.cases
        ]


def metric_columns(edition: Edition | str) -> list[str]:
    """The metric columns of ``per_case.csv`` for an edition, in order."""
    if str(edition) == "2022":
        cols = ["dice"]
        for name in LABEL_NAMES_2022.values():
            cols += [
                f"{k}_{name}"
                for k in (
                    "dice",
                    "hd95",
                    "assd",
                    "surface_dice",
                    "tp_mm3",
                    "volume_gt_mm3",
                    "volume_pred_mm3",
                )
            ]
        return cols
    return ["dice", "precision", "recall", "hd95", "assd", "surface_dice", "volume_gt_mm3", "volume_pred_mm3"]


def _strip_suffix(name: str) -> str | None:
    for suffix in IMAGE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def find_prediction(pred_dir: PathLike, patient_id: str) -> Path | None:
    """The prediction file ``<pred_dir>/<patient_id>.nii.gz`` (or another image suffix), if any."""
    root = Path(pred_dir)
    for suffix in IMAGE_SUFFIXES:
        candidate = root / f"{patient_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _label_folder(root: Path, boxes: Mapping[str, BBox]) -> list[GroundTruthCase]:
    out = []
    for path in sorted(root.iterdir()):
        pid = _strip_suffix(path.name) if path.is_file() and not path.name.startswith(".") else None
        if pid is not None:
            out.append(GroundTruthCase(pid, path, boxes.get(pid)))
    return out


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
        (cases without a label are skipped), or a folder of label files named
        by patient id, as the organisers kept them.
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
    try:
        cases = discover_cases(root, layout=layout, bbox_table=bbox_table)
    except LayoutError:
        if layout is not None:
            raise
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
            hint="give a dataset folder (2020/2021/2022/nnU-Net layout) or a folder of <PID>.nii.gz label files",
        )
    return folder


def _format(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.8g}"
    return str(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write_outputs(result: EvaluationResult, out_dir: Path) -> EvaluationResult:
    csv_path, json_path = out_dir / "per_case.csv", out_dir / "summary.json"
    rows = result.rows()
    buffer = io.StringIO()
    fieldnames = ["patient_id", "status", *metric_columns(result.edition), "message"]
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(v) for k, v in row.items()})
    atomic_write_text(csv_path, buffer.getvalue())
    atomic_write_text(json_path, json.dumps(_json_safe(result.summary), indent=2, allow_nan=False) + "\n")
    return attrs.evolve(result, per_case_csv=csv_path, summary_json=json_path)


def _gt_volumes_2022(gt: sitk.Image) -> dict[str, float]:
    array = sitk.GetArrayViewFromImage(gt)
    voxel = float(gt.GetSpacing()[0] * gt.GetSpacing()[1] * gt.GetSpacing()[2])
    return {name: float((array == lab).sum()) * voxel for lab, name in LABEL_NAMES_2022.items()}


def evaluate(
    pred_dir: PathLike,
    gt_dir: PathLike,
    *,
    edition: Edition | str,
    bbox_table: PathLike | None = None,
    out_dir: PathLike | None = None,
    layout: Layout | str | None = None,
    official_spacing_quirk: bool = False,
    tolerance_mm: float = 1.0,
    strict: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> EvaluationResult:
    """Score ``<pred_dir>/<PID>.nii.gz`` against the ground truth by one edition's official rules.

    Parameters
    ----------
    pred_dir
        Folder of predictions named by patient id (labels on the CT grid).
    gt_dir
        A dataset in any layout hecktorseg reads, or a folder of ``<PID>.nii.gz`` label maps.
    edition
        ``"2020"``, ``"2021"`` or ``"2022"`` (see :mod:`hecktorseg.evaluation.scoring`).
    bbox_table
        Box table for 2020/2021 when ``gt_dir`` has none (or to override it). A
        case without a box is scored on the ground truth's whole extent, with a warning.
    out_dir
        If given, ``per_case.csv`` and ``summary.json`` are written there atomically
        (strict JSON: non-finite numbers such as an infinite median HD95 become
        ``null``; the CSV writes ``inf`` and leaves NaN cells empty).
    layout
        Force the dataset layout of ``gt_dir``.
    official_spacing_quirk
        2021 only: compute HD95 with the official script's (x, y, z) spacing on (z, y, x) arrays.
    tolerance_mm
        Tolerance of the surface Dice.
    strict
        Raise on the first unusable prediction instead of scoring it as missing.
    overwrite
        Replace existing ``per_case.csv`` / ``summary.json``.
    progress
        ``callback(completed, total, patient_id)`` after each case.

    Returns
    -------
    EvaluationResult
        Per-case scores (every ground-truth case; a missing prediction gets the
        edition's missing score) and the summary.

    Raises
    ------
    HecktorsegError
        Unknown edition, unreadable/invalid ground truth, no ground truth found,
        existing outputs without ``overwrite``; with ``strict``, unusable predictions.
    """
    ed = str(edition.value if isinstance(edition, Layout) else edition)
    if ed not in EDITIONS:
        raise DataError(f"unknown edition {edition!r}", hint=f"choose one of {', '.join(EDITIONS)}")
    pred_root = Path(pred_dir)
    if not pred_root.is_dir():
        raise DataError("prediction folder not found", path=pred_root, hint="give the folder of <PID>.nii.gz")
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None and not overwrite:
        for name in ("per_case.csv", "summary.json"):
            if (out_path / name).exists():
                raise DataError(
                    "evaluation output already exists",
                    path=out_path / name,
                    hint="choose another output folder or pass overwrite=True (--force)",
                )
    truths = find_ground_truth(gt_dir, layout=layout, bbox_table=bbox_table)
    known = {t.patient_id for t in truths}
    extra = sorted(
        pid
        for p in pred_root.iterdir()
        if p.is_file() and (pid := _strip_suffix(p.name)) is not None and pid not in known
    )
    if extra:
        logger.warning(
            "%d prediction(s) have no ground truth and are ignored: %s", len(extra), ", ".join(extra[:10])
        )
    if ed in ("2020", "2021"):
        no_box = [t.patient_id for t in truths if t.bbox is None]
        if no_box:
            logger.warning(
                "%d case(s) have no box (%s%s); they are scored on the ground truth's whole extent — "
                "give the box table with bbox_table/--bbox for the official numbers",
                len(no_box),
                ", ".join(no_box[:5]),
                ", …" if len(no_box) > 5 else "",
            )
    allowed = allowed_labels(ed)
    scores: list[CaseScore] = []
    for i, truth in enumerate(truths):
        gt = read_image(truth.label_path, kind="label", allowed_labels=allowed)
        scores.append(
            _score_one(
                ed,
                truth,
                gt,
                find_prediction(pred_root, truth.patient_id),
                official_spacing_quirk,
                tolerance_mm,
                strict,
            )
        )
        if progress is not None:
            progress(i + 1, len(truths), truth.patient_id)
    summary = summarize(scores, ed)
    result = EvaluationResult(edition=ed, cases=tuple(scores), summary=summary)
    if out_path is not None:
        result = _write_outputs(result, out_path)
    return result


def _score_one(
    ed: str,
    truth: GroundTruthCase,
    gt: sitk.Image,
    pred_path: Path | None,
    quirk: bool,
    tolerance_mm: float,
    strict: bool,
) -> CaseScore:
    pid = truth.patient_id
    if pred_path is None:
        logger.warning("case %s: no prediction found; scored as missing", pid)
        if ed == "2022":
            return attrs.evolve(score_2022(None, gt, patient_id=pid), message="no prediction file")
        fn = score_2020 if ed == "2020" else score_2021
        return attrs.evolve(fn(None, gt, truth.bbox, patient_id=pid), message="no prediction file")
    try:
        pred = read_image(pred_path, kind="label")
        if ed == "2020":
            return score_2020(pred, gt, truth.bbox, patient_id=pid, tolerance_mm=tolerance_mm)
        if ed == "2021":
            return score_2021(
                pred, gt, truth.bbox, patient_id=pid, official_spacing_quirk=quirk, tolerance_mm=tolerance_mm
            )
        return score_2022(pred, gt, patient_id=pid, tolerance_mm=tolerance_mm)
    except (DataError, GeometryError) as exc:
        if strict:
            raise
        logger.error("case %s: unusable prediction, scored as missing: %s", pid, exc)
        volumes: float | dict[str, float] = _gt_volumes_2022(gt) if ed == "2022" else math.nan
        if ed != "2022":
            missing = (score_2020 if ed == "2020" else score_2021)(None, gt, truth.bbox, patient_id=pid)
            volumes = missing.metrics["volume_gt_mm3"]
        return missing_score(pid, ed, status="invalid", message=str(exc), volume_gt_mm3=volumes)
