"""``hecktorseg visualize``: PNG overlays of CT/PET slices with ground-truth and predicted contours."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hecktorseg.cli._common import console, handle_errors, progress_bar

HELP = """Draw OUT_DIR/<PID>.png for each case: CT and PET slices (axial, coronal, sagittal) through the tumour, GTVp (label 1) in green and GTVn (label 2) in magenta, ground truth solid and prediction dashed, with a legend.

CASE_OR_DIR is a dataset (any layout), a preprocessed dataset, or one case's folder.
"""


def register(app: typer.Typer) -> None:
    """Add the ``visualize`` command to ``app``."""

    @app.command("visualize", help=HELP)
    @handle_errors
    def visualize(
        case_or_dir: Path = typer.Argument(..., help="Dataset, preprocessed dataset or one case folder."),
        out_dir: Path = typer.Argument(..., help="Where the PNGs go."),
        predictions: Optional[Path] = typer.Option(  # noqa: UP045 - Typer needs a runtime Optional
            None, "--predictions", "-p", help="Folder of <PID>.nii.gz predictions to overlay (dashed)."
        ),
        layout: Optional[str] = typer.Option(  # noqa: UP045
            None, "--layout", help="Force the dataset layout: 2020, 2021, 2022, 2025, 2026 or nnunet."
        ),
        force: bool = typer.Option(False, "--force", help="Redraw existing PNGs."),
    ) -> None:
        from hecktorseg.evaluation import visualize_dataset

        with progress_bar("drawing") as update:
            written = visualize_dataset(
                case_or_dir,
                out_dir,
                predictions_dir=predictions,
                layout=layout,
                overwrite=force,
                progress=update,
            )
        console.print(f"{len(written)} picture(s) in {out_dir}", highlight=False)
