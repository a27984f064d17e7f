"""Reviewing a cohort of predictions: :func:`write_review` writes one offline page for all of them."""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

import attrs

from hecktorseg.errors import DataError, HecktorsegError
from hecktorseg.evaluation import find_prediction
from hecktorseg.io import Case, Layout, discover_cases, ensure_output_dir
from hecktorseg.io.layout_specs import split_image_suffix
from hecktorseg.review.case_data import CaseInputs, review_case
from hecktorseg.review.flags import ERROR_FLAG, CaseStats, ReviewSettings, flags_of
from hecktorseg.review.page import write_case_file, write_page
from hecktorseg.typing import PathLike, ProgressCallback

__all__ = ["UNCERTAINTY_SUBDIR", "ReviewResult", "ReviewRow", "write_review"]

logger = logging.getLogger(__name__)

UNCERTAINTY_SUBDIR = "uncertainty"
"""Where ``hecktorseg predict --save-uncertainty`` puts the variance maps (``hecktorseg.inference.UNCERTAINTY_DIR``)."""


@attrs.frozen
class ReviewRow:
    """One case's row of the review table.

    Attributes
    ----------
    patient_id, centre
        The case.
    stats
        What was measured on the prediction (``None`` if the case could not be reviewed).
    metrics
        Metric name → value: the scores of ``per_case.csv`` if given, else the Dice per
        label against the ground truth (empty without one).
    flags
        The names of the flags that apply (:data:`~hecktorseg.review.REVIEW_FLAGS`, or ``"error"``).
    error
        Why the case could not be reviewed.
    data_file
        The viewer data, relative to the page.
    """

    patient_id: str
    centre: str
    stats: CaseStats | None
    metrics: dict[str, float | str] = attrs.field(factory=dict)
    flags: tuple[str, ...] = ()
    error: str | None = None
    data_file: str | None = None


@attrs.frozen
class ReviewResult:
    """What :func:`write_review` wrote: the page and one row per case."""

    index_html: Path
    rows: tuple[ReviewRow, ...]

    @property
    def errors(self) -> dict[str, str]:
        """Patient id → why the case could not be reviewed."""
        return {r.patient_id: r.error for r in self.rows if r.error is not None}


def _read_scores(scores_dir: Path) -> dict[str, dict[str, float | str]]:
    """``per_case.csv`` of :func:`~hecktorseg.evaluation.evaluate`: patient id → its status and metrics."""
    path = scores_dir / "per_case.csv" if scores_dir.is_dir() else scores_dir
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            table = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"cannot read the scores ({exc})", path=path, hint="give the folder hecktorseg evaluate wrote"
        ) from None
    out: dict[str, dict[str, float | str]] = {}
    for row in table:
        pid = row.get("patient_id")
        if not pid:
            raise DataError("scores table has no patient_id column", path=path, hint="give per_case.csv")
        values: dict[str, float | str] = {}
        for key, text in row.items():
            if key in ("patient_id", "message") or key is None:
                continue
            try:
                values[key] = float(text) if text else math.nan
            except ValueError:
                values[key] = text
        out[pid] = values
    return out


def _inputs(case: Case, pred_root: Path, unc_root: Path) -> CaseInputs | str:
    pred = find_prediction(pred_root, case.patient_id)
    if pred is None:
        return f"no prediction {case.patient_id}.nii.gz in {pred_root}"
    return CaseInputs(
        patient_id=case.patient_id,
        centre=case.centre,
        ct_path=case.ct_path,
        pet_path=case.pet_path,
        pred_path=pred,
        label_path=case.label_path,
        uncertainty_path=find_prediction(unc_root, case.patient_id) if unc_root.is_dir() else None,
        bbox=case.bbox,
    )


def _check_out(out: Path, force: bool) -> None:
    if (out / "index.html").exists() and not force:
        raise DataError(
            "a review page already exists",
            path=out / "index.html",
            hint="choose another folder or pass force=True",
        )


def write_review(
    pred_dir: PathLike,
    data_dir: PathLike,
    out_dir: PathLike,
    *,
    scores_dir: PathLike | None = None,
    layout: Layout | str | None = None,
    bbox_table: PathLike | None = None,
    settings: ReviewSettings | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> ReviewResult:
    """Write ``OUT_DIR/index.html``: a page to review every prediction offline, in any browser.

    The page has one sortable, filterable table of the cohort (patient, centre, predicted
    GTVp and GTVn volumes, GTVn components, SUVmax in the GTVp, the metrics, the flags of
    :data:`~hecktorseg.review.REVIEW_FLAGS`) and a viewer per case (CT with window presets
    fused with the PET, outlines of the prediction and the ground truth). Each case's data
    is a ``cases/case-NNNN.js`` file beside the page, loaded when the case is opened.

    Parameters
    ----------
    pred_dir
        Folder of ``<PID>.nii.gz`` predictions on each CT's grid (``hecktorseg predict``);
        its ``uncertainty/`` sub-folder, if any, gives the models' variance maps.
    data_dir
        The dataset the predictions were made from (any layout :func:`hecktorseg.io.discover_cases`
        reads); its label maps, where there are some, are drawn as the ground truth.
    out_dir
        Where the page goes.
    scores_dir
        The folder :func:`~hecktorseg.evaluation.evaluate` wrote (or its ``per_case.csv``):
        its metrics fill the table. Without it, the Dice per label is computed where the
        dataset has ground truth.
    layout, bbox_table
        Force the dataset layout; a box table to use instead of the dataset's.
    settings
        Flag thresholds and viewer size (:class:`ReviewSettings` defaults when ``None``).
    force
        Replace an existing review in ``out_dir``.
    progress
        ``callback(completed, total, patient_id)`` after each case.

    Returns
    -------
    ReviewResult
        The page and one row per case. A case that cannot be reviewed (missing prediction,
        prediction on another grid, unreadable image, prediction without a case) is a row
        marked with the error; the other cases are reviewed.

    Raises
    ------
    HecktorsegError
        The prediction or data folder is missing or holds no case, the scores cannot be
        read, or a review exists in ``out_dir`` without ``force``.
    """
    cfg = settings or ReviewSettings()
    pred_root, out = Path(pred_dir), Path(out_dir)
    if not pred_root.is_dir():
        raise DataError("prediction folder not found", path=pred_root, hint="give the folder of <PID>.nii.gz")
    _check_out(out, force)
    cases = discover_cases(data_dir, layout=layout, bbox_table=bbox_table, strict=False)
    scores = _read_scores(Path(scores_dir)) if scores_dir is not None else None
    ensure_output_dir(out)
    known = {c.patient_id for c in cases}
    orphans = sorted(
        pid
        for p in pred_root.iterdir()
        if p.is_file()
        and (split := split_image_suffix(p.name)) is not None
        and (pid := split[0]) not in known
    )
    total = len(cases) + len(orphans)
    rows: list[ReviewRow] = []
    for i, case in enumerate(cases):
        rows.append(_review_one(case, pred_root, out, i, scores, cfg))
        if progress is not None:
            progress(i + 1, total, case.patient_id)
    for k, pid in enumerate(orphans):
        rows.append(_error_row(pid, "", f"prediction without a case in {data_dir}"))
        if progress is not None:
            progress(len(cases) + k + 1, total, pid)
    index = write_page(out, rows, cfg)
    return ReviewResult(index_html=index, rows=tuple(rows))


def _error_row(pid: str, centre: str, message: str) -> ReviewRow:
    logger.error("case %s not reviewed: %s", pid, message)
    return ReviewRow(pid, centre, None, flags=(ERROR_FLAG,), error=message)


def _review_one(
    case: Case,
    pred_root: Path,
    out: Path,
    number: int,
    scores: dict[str, dict[str, float | str]] | None,
    cfg: ReviewSettings,
) -> ReviewRow:
    inputs = _inputs(case, pred_root, pred_root / UNCERTAINTY_SUBDIR)
    if isinstance(inputs, str):
        return _error_row(case.patient_id, case.centre, inputs)
    try:
        stats, dice, payload = review_case(inputs, cfg)
    except HecktorsegError as exc:
        return _error_row(case.patient_id, case.centre, str(exc))
    except (RuntimeError, ValueError, OSError) as exc:  # SimpleITK's own errors on odd images
        return _error_row(case.patient_id, case.centre, f"{exc} ({inputs.pred_path})")
    metrics: dict[str, Any] = dict(scores.get(case.patient_id, {})) if scores is not None else dict(dice)
    data_file = write_case_file(out, number, payload)
    return ReviewRow(case.patient_id, case.centre, stats, metrics, flags_of(stats, cfg), data_file=data_file)
