"""``hecktorseg evaluate``: official HECKTOR 2020–2026 scores of a folder of predictions (or a ranking of several)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import typer

from hecktorseg.cli._common import console, err_console, handle_errors, progress_bar

HELP = """Score PRED_DIR/<PID>.nii.gz against the ground truth by one edition's official rules.

GT_DIR is a dataset (any layout hecktorseg reads, including the 2025/2026 <PID>/<PID>.nii.gz folders) or a folder of <PID>.nii.gz label maps. 2020: mean Dice (+ precision, recall) on the box grid; 2021: mean Dice and median HD95; 2022: aggregated Dice per label (GTVp, GTVn) and their mean; 2025 and 2026: GTVp mean Dice, GTVn aggregated Dice and aggregated F1 of lesion detection (IoU > 0.3), predictions on the ground-truth grid. Missing predictions are scored as the rules say. Writes OUT_DIR/per_case.csv and OUT_DIR/summary.json when OUT_DIR is given (as a third argument or with --out).

With --predictions (2025/2026), several runs are scored and ranked as the challenge ranks teams: OUT_DIR/<run>/per_case.csv, OUT_DIR/<run>/summary.json and OUT_DIR/ranking.csv, a run being named by its folder (runs/A/preds and runs/B/preds: A-preds and B-preds).
"""


_COUNT_COLUMNS = frozenset({"gtvn_lesions_gt", "gtvn_lesions_pred", "gtvn_tp", "gtvn_fp", "gtvn_fn"})
"""Per-case columns holding counts (stored as floats, NaN when unknown): shown without decimals."""


def _fmt(value: Any, *, count: bool = False) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "inf"
        return f"{value:.0f}" if count else f"{value:.4f}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``."""

    @app.command("evaluate", help=HELP)
    @handle_errors
    def evaluate(
        pred_dir: Path = typer.Argument(..., help="Folder of <PID>.nii.gz predictions."),
        gt_dir: Path = typer.Argument(
            ..., help="Ground truth: a dataset folder or a folder of <PID>.nii.gz."
        ),
        out_dir_arg: Optional[Path] = typer.Argument(  # noqa: UP045 - Typer needs a runtime Optional
            None, metavar="[OUT_DIR]", help="Where per_case.csv and summary.json go (same as --out)."
        ),
        edition: str = typer.Option(
            ..., "--edition", "-e", help="Scoring rules: 2020, 2021, 2022, 2025 or 2026."
        ),
        more: Optional[list[Path]] = typer.Option(  # noqa: UP045
            None,
            "--predictions",
            "-p",
            metavar="DIR",
            help="Another run's prediction folder to score and rank with PRED_DIR (repeatable; 2025/2026).",
        ),
        bbox: Optional[Path] = typer.Option(  # noqa: UP045
            None, "--bbox", help="Box table (2020/2021) when GT_DIR has none, or to override it."
        ),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder."),  # noqa: UP045
        layout: Optional[str] = typer.Option(  # noqa: UP045
            None, "--layout", help="Force the GT dataset layout: 2020, 2021, 2022, 2025, 2026 or nnunet."
        ),
        quirk: bool = typer.Option(
            False,
            "--official-spacing-quirk/--no-official-spacing-quirk",
            help="2021: reproduce the official HD95 script's (x,y,z) spacing on (z,y,x) arrays.",
        ),
        tolerance: float = typer.Option(1.0, "--tolerance", help="Surface-Dice tolerance in mm."),
        strict: bool = typer.Option(False, "--strict", help="Stop at the first unusable prediction."),
        force: bool = typer.Option(False, "--force", help="Overwrite existing per_case.csv / summary.json."),
    ) -> None:
        from rich.table import Table

        from hecktorseg.errors import ConfigError
        from hecktorseg.evaluation import EDITIONS, evaluate_runs, get_rules
        from hecktorseg.evaluation import evaluate as run_evaluation

        if out_dir_arg is not None and out is not None and out_dir_arg != out:
            raise ConfigError(
                "two output folders given", hint="give OUT_DIR either as an argument or with --out"
            )
        if edition not in EDITIONS:
            raise ConfigError(f"unknown edition {edition!r}", hint=f"use one of {', '.join(EDITIONS)}")
        rules = get_rules(edition)
        out_dir = out if out is not None else out_dir_arg
        # what scoring one folder and ranking several have in common
        options: dict[str, Any] = {
            "edition": edition,
            "bbox_table": bbox,
            "out_dir": out_dir,
            "layout": layout,
            "official_spacing_quirk": quirk,
            "tolerance_mm": tolerance,
            "strict": strict,
            "force": force,
        }
        if more:
            if rules.rank is None:
                raise ConfigError(
                    f"--predictions: the {edition} rules define no ranking of several runs",
                    hint="evaluate each folder on its own, or use --edition 2025 / 2026",
                )
            with progress_bar("evaluating") as update:
                ranked = evaluate_runs([pred_dir, *more], gt_dir, **options, progress=update)
            _print_ranking(ranked.ranking, edition)
            if ranked.ranking_csv is not None:
                console.print(
                    f"wrote {ranked.ranking_csv} and per-run scores in {out_dir}/<run>/", highlight=False
                )
            return
        with progress_bar("evaluating") as update:
            result = run_evaluation(pred_dir, gt_dir, **options, progress=update)
        shown = [c for c in rules.shown_columns if c in rules.metric_columns]
        table = Table(title=f"HECKTOR {edition} scores ({len(result.cases)} cases)")
        table.add_column("patient")
        table.add_column("status")
        for column in shown:
            table.add_column(column, justify="right")
        for row in result.rows():
            style = None if row["status"] == "ok" else "yellow"
            table.add_row(
                row["patient_id"],
                row["status"],
                *(_fmt(row[c], count=c in _COUNT_COLUMNS) for c in shown),
                style=style,
            )
        console.print(table)
        summary = Table(title="summary", show_header=False)
        summary.add_column("key")
        summary.add_column("value", justify="right")
        for key, value in result.summary.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    summary.add_row(f"{key}[{sub}]", _fmt(v))
            else:
                summary.add_row(key, _fmt(value))
        console.print(summary)
        for case in result.cases:
            if case.status == "invalid" and case.message:
                err_console.print(
                    f"[yellow]{case.patient_id}:[/] {case.message}", highlight=False, soft_wrap=True
                )
        if result.summary_json is not None:
            console.print(f"wrote {result.per_case_csv} and {result.summary_json}", highlight=False)


def _print_ranking(ranking: Sequence[Any], edition: str) -> None:
    from rich.table import Table

    from hecktorseg.evaluation.ranking import RANKING_COLUMNS

    table = Table(title=f"HECKTOR {edition} ranking ({len(ranking)} runs)")
    for column in RANKING_COLUMNS:
        table.add_column(column, justify="left" if column == "run" else "right")
    for entry in ranking:
        table.add_row(*(_fmt(v) for v in entry.row().values()))
    console.print(table)
