"""Scoring a folder of predictions against a ground-truth dataset: :func:`evaluate`."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError, LayoutError
from hecktorseg.evaluation.ranking import RANKING_COLUMNS, RunRanking
from hecktorseg.evaluation.rules import RULES, EditionRules, ScoringOptions, get_rules
from hecktorseg.evaluation.scoring import CaseScore
from hecktorseg.io import IMAGE_SUFFIXES, BBox, Layout, atomic_write_text, read_image, split_image_suffix
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = [
    "IMAGE_SUFFIXES",
    "EvaluationResult",
    "GroundTruthCase",
    "RankingResult",
    "evaluate",
    "evaluate_runs",
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
        ``"2020"``, ``"2021"``, ``"2022"``, ``"2025"`` or ``"2026"``.
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
    def rules(self) -> EditionRules:
        """The edition's scoring rules."""
        return get_rules(self.edition)

    @property
    def headline(self) -> float:
        """The edition's main figure (``summary[rules.headline]``: mean Dice, mean DSCagg, GTVp mean Dice)."""
        value = self.summary.get(self.rules.headline)
        return math.nan if value is None else float(value)

    @property
    def mean_dice(self) -> float:
        """``summary["mean_dice"]``: the mean per-case Dice (NaN if there are no cases).

        The 2025/2026 summaries have no ``mean_dice``; there it is ``gtvp_mean_dice``.
        """
        value = self.summary.get("mean_dice", self.summary.get("gtvp_mean_dice"))
        return math.nan if value is None else float(value)

    @property
    def per_case_dice(self) -> dict[str, float]:
        """Patient id → Dice (2022, 2025, 2026: the mean over the labels present)."""
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


@attrs.frozen
class RankingResult:
    """What :func:`evaluate_runs` found: each run's evaluation and their ranking.

    Attributes
    ----------
    edition
        The rules used.
    runs
        Run name → its :class:`EvaluationResult` (in the order given).
    ranking
        One :class:`~hecktorseg.evaluation.RunRanking` per run, best first.
    ranking_csv
        ``ranking.csv``, if an output folder was given.
    """

    edition: str
    runs: dict[str, EvaluationResult]
    ranking: tuple[RunRanking, ...]
    ranking_csv: Path | None = None


def metric_columns(edition: EditionRules | str) -> list[str]:
    """The metric columns of ``per_case.csv`` for an edition, in order."""
    return list(get_rules(edition).metric_columns)


def _strip_suffix(name: str) -> str | None:
    split = split_image_suffix(name)
    return None if split is None else split[0]


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


_PATIENT_FOLDER_LAYOUTS = ("2025", "2026")


def _patient_folder_labels(root: Path, boxes: Mapping[str, BBox]) -> list[GroundTruthCase]:
    """The labels of the 2025/2026 Task 1 layout: ``<root>/<PID>/<PID>.nii.gz`` beside ``<PID>__CT``/``__PT``.

    Kept small and local on purpose: once :func:`hecktorseg.io.discover_cases`
    reads these layouts, the dataset branch of :func:`find_ground_truth` finds
    them first and this is not reached.
    """
    out = []
    for sub in sorted(root.iterdir()):
        if not sub.is_dir() or sub.name.startswith("."):
            continue
        label = find_prediction(sub, sub.name)  # <PID>/<PID><suffix>, the same naming as predictions
        if label is not None:
            out.append(GroundTruthCase(sub.name, label, boxes.get(sub.name)))
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
        (cases without a label are skipped), a HECKTOR 2025/2026 Task 1 folder
        (``<PID>/<PID>.nii.gz`` label maps in patient folders), or a folder of
        label files named by patient id, as the organisers kept them.
    layout
        Force a dataset layout instead of detecting it (``"2025"`` / ``"2026"``:
        the patient folders).
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
    patient_folders = layout is not None and str(getattr(layout, "value", layout)) in _PATIENT_FOLDER_LAYOUTS
    try:
        cases = discover_cases(root, layout=layout, bbox_table=bbox_table)
    except LayoutError:
        if layout is not None and not patient_folders:
            raise
        cases = []
    labelled = [
        GroundTruthCase(c.patient_id, c.label_path, c.bbox) for c in cases if c.label_path is not None
    ]
    if labelled:
        return sorted(labelled, key=lambda g: g.patient_id)
    boxes = read_bbox_table(bbox_table) if bbox_table is not None else {}
    folder = _patient_folder_labels(root, boxes)
    if not folder and not patient_folders:
        folder = _label_folder(root, boxes)
    if not folder:
        raise LayoutError(
            "found no ground-truth label maps",
            path=root,
            hint="give a dataset folder (2020/2021/2022/2025/2026/nnU-Net layout) or a folder of "
            "<PID>.nii.gz label files",
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


def _check_free(paths: list[Path], overwrite: bool) -> None:
    if overwrite:
        return
    for path in paths:
        if path.exists():
            raise DataError(
                "evaluation output already exists",
                path=path,
                hint="choose another output folder or pass overwrite=True (--force)",
            )


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


def evaluate(
    pred_dir: PathLike,
    gt_dir: PathLike,
    *,
    edition: EditionRules | Layout | str,
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
        A dataset in any layout hecktorseg reads, a 2025/2026 Task 1 folder
        (``<PID>/<PID>.nii.gz``), or a folder of ``<PID>.nii.gz`` label maps.
    edition
        ``"2020"``, ``"2021"``, ``"2022"``, ``"2025"`` or ``"2026"`` (see
        :mod:`hecktorseg.evaluation.rules`), or an :class:`~hecktorseg.evaluation.EditionRules`.
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
    GeometryError
        2025/2026: a prediction is not on its ground truth's grid (these rules
        do not resample; the message names the file). Nothing is written.
    HecktorsegError
        Unknown edition, unreadable/invalid ground truth, no ground truth found,
        existing outputs without ``overwrite``; with ``strict``, unusable predictions.
    """
    rules = get_rules(edition)
    _check_predictions(Path(pred_dir))
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        _check_free([out_path / "per_case.csv", out_path / "summary.json"], overwrite)
    result = _evaluate(
        rules,
        Path(pred_dir),
        find_ground_truth(gt_dir, layout=layout, bbox_table=bbox_table),
        ScoringOptions(tolerance_mm=tolerance_mm, official_spacing_quirk=official_spacing_quirk),
        strict,
        progress,
    )
    if out_path is not None:
        result = _write_outputs(result, out_path)
    return result


def _evaluate(
    rules: EditionRules,
    pred_root: Path,
    truths: list[GroundTruthCase],
    options: ScoringOptions,
    strict: bool,
    progress: ProgressCallback | None,
) -> EvaluationResult:
    _check_predictions(pred_root)
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
    if rules.needs_box:
        no_box = [t.patient_id for t in truths if t.bbox is None]
        if no_box:
            logger.warning(
                "%d case(s) have no box (%s%s); they are scored on the ground truth's whole extent — "
                "give the box table with bbox_table/--bbox for the official numbers",
                len(no_box),
                ", ".join(no_box[:5]),
                ", …" if len(no_box) > 5 else "",
            )
    scores: list[CaseScore] = []
    for i, truth in enumerate(truths):
        gt = read_image(truth.label_path, kind="label", allowed_labels=rules.labels)
        scores.append(
            _score_one(rules, truth, gt, find_prediction(pred_root, truth.patient_id), options, strict)
        )
        if progress is not None:
            progress(i + 1, len(truths), truth.patient_id)
    summary = rules.summarize(scores, rules.edition)
    return EvaluationResult(edition=rules.edition, cases=tuple(scores), summary=summary)


def _check_predictions(pred_root: Path) -> None:
    if not pred_root.is_dir():
        raise DataError("prediction folder not found", path=pred_root, hint="give the folder of <PID>.nii.gz")


def _score_one(
    rules: EditionRules,
    truth: GroundTruthCase,
    gt: sitk.Image,
    pred_path: Path | None,
    options: ScoringOptions,
    strict: bool,
) -> CaseScore:
    pid = truth.patient_id
    if pred_path is None:
        logger.warning("case %s: no prediction found; scored as missing", pid)
        return attrs.evolve(rules.score(None, gt, truth.bbox, pid, options), message="no prediction file")
    try:
        pred = read_image(pred_path, kind="label")
        return rules.score(pred, gt, truth.bbox, pid, options)
    except GeometryError as exc:
        if rules.grid == "exact":  # these rules do not resample: a wrong grid is the user's bug, not a 0
            raise GeometryError(exc.message, path=pred_path, hint=exc.hint) from None
        if strict:
            raise
        return _invalid(rules, truth, gt, options, exc)
    except DataError as exc:
        if strict:
            raise
        return _invalid(rules, truth, gt, options, exc)


def _invalid(
    rules: EditionRules, truth: GroundTruthCase, gt: sitk.Image, options: ScoringOptions, exc: Exception
) -> CaseScore:
    logger.error("case %s: unusable prediction, scored as missing: %s", truth.patient_id, exc)
    missing = rules.score(None, gt, truth.bbox, truth.patient_id, options)
    return attrs.evolve(missing, status="invalid", message=str(exc))


def _run_names(pred_dirs: Sequence[PathLike] | Mapping[str, PathLike]) -> dict[str, Path]:
    if isinstance(pred_dirs, (str, os.PathLike)):
        pred_dirs = [pred_dirs]
    if isinstance(pred_dirs, Mapping):
        named = {str(k): Path(v) for k, v in pred_dirs.items()}
    else:
        named = {}
        for value in pred_dirs:
            path = Path(value)
            base = path.resolve().name or "run"
            name, k = base, 2
            while name in named:
                name, k = f"{base}-{k}", k + 1
            named[name] = path
    for name in named:
        if not name or name in (".", "..") or "/" in name or "\\" in name or name == "ranking.csv":
            raise DataError(
                f"run name {name!r} cannot be a folder name", hint="name each run by a plain folder name"
            )
    return named


def evaluate_runs(
    pred_dirs: Sequence[PathLike] | Mapping[str, PathLike],
    gt_dir: PathLike,
    *,
    edition: EditionRules | Layout | str,
    out_dir: PathLike | None = None,
    bbox_table: PathLike | None = None,
    layout: Layout | str | None = None,
    official_spacing_quirk: bool = False,
    tolerance_mm: float = 1.0,
    strict: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> RankingResult:
    """Score several runs (prediction folders) against the same ground truth and rank them.

    Parameters
    ----------
    pred_dirs
        The runs' prediction folders (a run is named by its folder name; a
        repeated name gets ``-2``, ``-3``, …), or run name → folder.
    gt_dir, bbox_table, layout, official_spacing_quirk, tolerance_mm, strict
        As in :func:`evaluate`.
    edition
        Rules with a ranking: ``"2025"`` or ``"2026"`` (see
        :mod:`hecktorseg.evaluation.ranking` for the Borda counts and ties).
    out_dir
        If given: ``<out_dir>/<run>/per_case.csv`` and ``summary.json`` for each
        run and ``<out_dir>/ranking.csv`` (best run first), all written
        atomically after every run has been scored.
    overwrite
        Replace existing outputs (otherwise any existing one is an error, before scoring).
    progress
        ``callback(completed, total, label)`` over all cases of all runs.

    Raises
    ------
    DataError
        The edition defines no ranking, no run given, a run name unusable as a folder name.
    GeometryError, HecktorsegError
        As in :func:`evaluate`.
    """
    rules = get_rules(edition)
    if rules.rank is None:
        ranked = ", ".join(e for e in _ranked_editions())
        raise DataError(
            f"the {rules.edition} rules define no ranking of several runs",
            hint=f"evaluate each prediction folder on its own, or use edition {ranked}",
        )
    runs = _run_names(pred_dirs)
    if not runs:
        raise DataError("no prediction folder given", hint="give at least one prediction folder")
    for folder in runs.values():
        _check_predictions(folder)
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        wanted = [out_path / "ranking.csv"]
        for name in runs:
            wanted += [out_path / name / "per_case.csv", out_path / name / "summary.json"]
        _check_free(wanted, overwrite)
    truths = find_ground_truth(gt_dir, layout=layout, bbox_table=bbox_table)
    options = ScoringOptions(tolerance_mm=tolerance_mm, official_spacing_quirk=official_spacing_quirk)
    total = len(truths) * len(runs)
    results: dict[str, EvaluationResult] = {}
    for k, (name, folder) in enumerate(runs.items()):
        offset = k * len(truths)

        def step(done: int, _total: int, pid: str, offset: int = offset, name: str = name) -> None:
            if progress is not None:
                progress(offset + done, total, f"{name}/{pid}")

        results[name] = _evaluate(rules, folder, truths, options, strict, step)
    ranking = tuple(rules.rank({name: r.summary for name, r in results.items()}))
    csv_path = None
    if out_path is not None:
        results = {name: _write_outputs(r, out_path / name) for name, r in results.items()}
        csv_path = out_path / "ranking.csv"
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*RANKING_COLUMNS, "predictions"], lineterminator="\n")
        writer.writeheader()
        for entry in ranking:
            row = {k: _format(v) for k, v in entry.row().items()}
            writer.writerow({**row, "predictions": str(runs[entry.run])})
        atomic_write_text(csv_path, buffer.getvalue())
    return RankingResult(edition=rules.edition, runs=results, ranking=ranking, ranking_csv=csv_path)


def _ranked_editions() -> list[str]:
    return [name for name, r in RULES.items() if r.rank is not None]
