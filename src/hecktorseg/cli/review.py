"""``hecktorseg review``: one offline page to look at every prediction (cohort table and PET/CT viewer)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hecktorseg.cli._common import console, err_console, handle_errors, progress_bar

HELP = """Write OUT_DIR/index.html: a page to review every prediction, offline in any browser (no server, no network).

One table of the cohort (patient, centre, predicted GTVp and GTVn volumes, GTVn components, SUVmax in the GTVp, the metrics of --scores or the Dice against the ground truth), sortable and filterable, with flags: empty prediction, prediction at the border of the head-and-neck box, GTVn without GTVp, small components, models that disagree (where PRED_DIR/uncertainty/ holds the variance maps). Click a row for its viewer: axial, coronal and sagittal CT with window presets fused with the PET, outlines of the prediction (dashed) and the ground truth (solid), GTVp green and GTVn magenta.

A case that cannot be reviewed (no prediction, prediction on another grid, unreadable image) is a row with the error; the exit code is then 1.
"""


def register(app: typer.Typer) -> None:
    """Add the ``review`` command to ``app``."""

    @app.command("review", help=HELP)
    @handle_errors
    def review(
        pred_dir: Path = typer.Argument(..., help="Folder of <PID>.nii.gz predictions (hecktorseg predict)."),
        data_dir: Path = typer.Argument(..., help="The dataset they were predicted from (any layout)."),
        out_dir: Path = typer.Argument(..., help="Where the page goes (OUT_DIR/index.html)."),
        scores: Optional[Path] = typer.Option(  # noqa: UP045 - Typer needs a runtime Optional
            None, "--scores", help="Folder written by hecktorseg evaluate (its per_case.csv fills the table)."
        ),
        layout: Optional[str] = typer.Option(  # noqa: UP045
            None, "--layout", help="Force the dataset layout: 2020, 2021, 2022, 2025, 2026 or nnunet."
        ),
        bbox_table: Optional[Path] = typer.Option(  # noqa: UP045
            None, "--bbox-table", help="Box table (PatientID,x1,x2,y1,y2,z1,z2) instead of the dataset's."
        ),
        force: bool = typer.Option(False, "--force", help="Replace an existing review in OUT_DIR."),
    ) -> None:
        from hecktorseg.review import write_review

        with progress_bar("review") as update:
            result = write_review(
                pred_dir,
                data_dir,
                out_dir,
                scores_dir=scores,
                layout=layout,
                bbox_table=bbox_table,
                force=force,
                progress=update,
            )
        flagged = sum(1 for row in result.rows if row.flags and row.error is None)
        console.print(
            f"{len(result.rows)} case(s), {flagged} flagged, {len(result.errors)} failed: "
            f"open {result.index_html.resolve().as_uri()}",
            highlight=False,
            soft_wrap=True,
        )
        for pid, reason in result.errors.items():
            err_console.print(f"[red]failed[/] {pid}: {reason}", highlight=False, soft_wrap=True)
        if result.errors:
            raise typer.Exit(code=1)
