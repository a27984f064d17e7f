"""``hecktorseg predict``: masks on the original CT grid from one model or an ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hecktorseg.cli._common import console, err_console, handle_errors, progress_bar


def register(app: typer.Typer) -> None:
    """Add the ``predict`` command to ``app``."""

    @app.command("predict")
    @handle_errors
    def predict(
        input_dir: Path = typer.Argument(..., help="Raw dataset (any layout hecktorseg reads)."),
        output_dir: Path = typer.Argument(..., help="Where OUTPUT_DIR/<PID>.nii.gz masks go."),
        model: list[Path] = typer.Option(
            ..., "--model", "-m", help="Checkpoint (ours or the original); repeat for an ensemble."
        ),
        bbox: Optional[Path] = typer.Option(  # noqa: UP045 - Typer needs a runtime Optional
            None,
            "--bbox",
            help="Box table (PatientID,x1,x2,y1,y2,z1,z2); default: the dataset's, else from PET.",
        ),
        layout: Optional[str] = typer.Option(  # noqa: UP045
            None, "--layout", help="Force the input layout: 2020, 2021, 2022, 2025, 2026 or nnunet."
        ),
        tta: bool = typer.Option(False, "--tta/--no-tta", help="Average over the 8 mirrorings."),
        threshold: float = typer.Option(0.5, "--threshold", help="Probability threshold (binary models)."),
        save_probabilities: bool = typer.Option(
            False, "--save-probabilities", help="Also write OUTPUT_DIR/probabilities/<PID>.nii.gz."
        ),
        save_uncertainty: bool = typer.Option(
            False, "--save-uncertainty", help="Also write OUTPUT_DIR/uncertainty/<PID>.nii.gz (variance)."
        ),
        largest_component: bool = typer.Option(
            False,
            "--largest-component",
            help="Keep only the largest connected component of label 1 (GTVt/GTVp); nodes are kept.",
        ),
        min_gtvn_volume: float = typer.Option(
            0.0,
            "--min-gtvn-volume",
            min=0.0,
            metavar="MM3",
            help="Drop GTVn (label 2) components smaller than MM3 cubic millimetres (0: keep all).",
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        precision: str = typer.Option("auto", "--precision", help="auto (fastest exact), fp32 or bf16."),
        threads: Optional[int] = typer.Option(  # noqa: UP045
            None, "--threads", help="CPU threads for torch (default: torch's choice)."
        ),
        workers: int = typer.Option(
            1, "--workers", min=0, help="Threads reading and resampling the next cases (0: none)."
        ),
        num_parts: int = typer.Option(1, "--num-parts", help="Split the cases into this many shares."),
        part_id: int = typer.Option(0, "--part-id", help="Which share to predict (0-based)."),
        force: bool = typer.Option(False, "--force", help="Overwrite existing predictions."),
    ) -> None:
        """Predict every case of INPUT_DIR and write OUTPUT_DIR/<PID>.nii.gz on the original CT grid.

        Binary models write 0/1; GTVp + GTVn models (3 outputs) write uint8 labels 0/1/2.
        """
        from hecktorseg.errors import ConfigError
        from hecktorseg.inference import Predictor, predict_dataset

        if precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"unknown precision {precision!r}", hint="use auto, fp32 or bf16")
        predictor = Predictor.from_checkpoints(
            model,
            device=device,
            tta=tta,
            precision=precision,  # type: ignore[arg-type]
            threshold=threshold,
            largest_component=largest_component,
            min_gtvn_volume=min_gtvn_volume,
            num_threads=threads,
        )
        err_console.print(f"{predictor!r}", highlight=False)
        with progress_bar("predicting") as update:
            report = predict_dataset(
                input_dir,
                output_dir,
                predictor,
                layout=layout,
                bbox_table=bbox,
                save_probabilities=save_probabilities,
                save_uncertainty=save_uncertainty,
                num_parts=num_parts,
                part_id=part_id,
                overwrite=force,
                workers=workers,
                progress=update,
            )
        mean = sum(report.seconds) / len(report.seconds) if report.seconds else 0.0
        console.print(
            f"predicted {len(report.done)} case(s) ({mean:.1f} s/case), skipped {len(report.skipped)} "
            f"existing, {len(report.failed)} failed → {report.output_dir}",
            highlight=False,
        )
        for pid, reason in report.failed.items():
            err_console.print(f"[red]failed[/] {pid}: {reason}", highlight=False, soft_wrap=True)
        if report.failed:
            raise typer.Exit(code=1)
