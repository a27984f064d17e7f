"""What an evaluation returns and writes: the result records, ``per_case.csv``, ``summary.json``, ``ranking.csv``."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import attrs

from hecktorseg.errors import DataError
from hecktorseg.evaluation.ranking import RANKING_COLUMNS, RunRanking
from hecktorseg.evaluation.rules import EditionRules, get_rules
from hecktorseg.evaluation.scoring import CaseScore
from hecktorseg.io import atomic_write_text

__all__ = [
    "EvaluationResult",
    "RankingResult",
    "metric_columns",
]


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
        """The Dice of each patient, by id (for 2022, 2025 and 2026 the mean over the labels present)."""
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


def _check_free(paths: list[Path], force: bool) -> None:
    if force:
        return
    for path in paths:
        if path.exists():
            raise DataError(
                "evaluation output already exists",
                path=path,
                hint="choose another output folder or pass force=True",
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


def _write_ranking(ranking: tuple[RunRanking, ...], runs: Mapping[str, Path], csv_path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*RANKING_COLUMNS, "predictions"], lineterminator="\n")
    writer.writeheader()
    for entry in ranking:
        row = {k: _format(v) for k, v in entry.row().items()}
        writer.writerow({**row, "predictions": str(runs[entry.run])})
    atomic_write_text(csv_path, buffer.getvalue())


def _remove_stale_runs(csv_path: Path, keep: Collection[str]) -> None:
    """Before a ranking replaces ``csv_path`` (``force=True``): remove the per-run files of the runs
    that the previous ``ranking.csv`` lists and this ranking does not write again.

    Only the files a ranking writes (``per_case.csv``, ``summary.json``) are removed, and a run
    folder only when nothing else is left in it.
    """
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            names = [row.get("run") or "" for row in csv.DictReader(fh)]
    except (OSError, csv.Error, UnicodeDecodeError):
        return
    for name in names:
        if not name or name in keep or name in (".", "..") or "/" in name or "\\" in name:
            continue
        folder = csv_path.parent / name
        for file in ("per_case.csv", "summary.json"):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                (folder / file).unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty
