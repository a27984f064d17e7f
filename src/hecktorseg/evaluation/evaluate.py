"""Scoring prediction folders against a ground-truth dataset: :func:`evaluate` and :func:`evaluate_runs`.

Finding the ground truth and the predictions is in
:mod:`hecktorseg.evaluation.ground_truth`; the result records and the files
written (``per_case.csv``, ``summary.json``, ``ranking.csv``) in
:mod:`hecktorseg.evaluation.results`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.evaluation.ground_truth import (
    GroundTruthCase,
    _strip_suffix,
    find_ground_truth,
    find_prediction,
)
from hecktorseg.evaluation.results import (
    EvaluationResult,
    RankingResult,
    _check_free,
    _remove_stale_runs,
    _write_outputs,
    _write_ranking,
    metric_columns,
)
from hecktorseg.evaluation.rules import RULES, EditionRules, ScoringOptions, get_rules
from hecktorseg.evaluation.scoring import CaseScore
from hecktorseg.evaluation.scoring_box import check_box_overlaps
from hecktorseg.io import IMAGE_SUFFIXES, Layout, read_image
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
    force: bool = False,
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
    force
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
        existing outputs without ``force``; with ``strict``, unusable predictions.
    """
    rules = get_rules(edition)
    _check_predictions(Path(pred_dir))
    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        _check_free([out_path / "per_case.csv", out_path / "summary.json"], force)
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
                "give the box table (bbox_table=) for the official numbers",
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
    if rules.needs_box:
        try:
            check_box_overlaps(truth.bbox, gt, pid)
        except GeometryError as exc:
            if strict:
                raise
            logger.error("case %s: not scored: %s", pid, exc)
            return CaseScore(pid, "invalid", dict.fromkeys(rules.metric_columns, math.nan), str(exc))
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
        paths = [Path(value) for value in pred_dirs]
        parts = [p.resolve().parts[1:] or ("run",) for p in paths]
        # each run by its folder's name; runs/A/preds and runs/B/preds by "A-preds" and "B-preds"
        depth = 1
        while depth < max(len(q) for q in parts) and len({q[-depth:] for q in parts}) < len(set(parts)):
            depth += 1
        named = {}
        for path, q in zip(paths, parts, strict=True):
            base = "-".join(q[-depth:])
            name, k = base, 2
            while name in named:  # the same folder given twice
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
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> RankingResult:
    """Score several runs (prediction folders) against the same ground truth and rank them.

    Parameters
    ----------
    pred_dirs
        The runs' prediction folders, or run name → folder. A run is named by its
        folder's name; where two folders share their name, by as many parent folders
        as tell them apart, joined by ``-`` (``runs/A/preds``, ``runs/B/preds`` →
        ``A-preds``, ``B-preds``); the same folder given twice gets ``-2``, ``-3``, ….
    gt_dir, bbox_table, layout, official_spacing_quirk, tolerance_mm, strict
        As in :func:`evaluate`.
    edition
        Rules with a ranking: ``"2025"`` or ``"2026"`` (see
        :mod:`hecktorseg.evaluation.ranking` for the Borda counts and ties).
    out_dir
        If given: ``<out_dir>/<run>/per_case.csv`` and ``summary.json`` for each
        run and ``<out_dir>/ranking.csv`` (best run first), all written
        atomically after every run has been scored.
    force
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
        _check_free(wanted, force)
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
        if force:
            _remove_stale_runs(csv_path, set(runs))
        _write_ranking(ranking, runs, csv_path)
    return RankingResult(edition=rules.edition, runs=results, ranking=ranking, ranking_csv=csv_path)


def _ranked_editions() -> list[str]:
    return [name for name, r in RULES.items() if r.rank is not None]
