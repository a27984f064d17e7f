"""``hecktorseg predict``: masks on the original CT grid from one model or an ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from hecktorseg.cli._common import (
    backend_option,
    console,
    err_console,
    handle_errors,
    precision_option,
    progress_bar,
    reason_line,
    threads_option,
    tta_batch_option,
)

if TYPE_CHECKING:
    from hecktorseg.inference import Predictor
    from hecktorseg.reports import BatchReport


def register(app: typer.Typer) -> None:
    """Add the ``predict`` command to ``app``."""

    @app.command("predict")
    @handle_errors
    def predict(
        input_dir: Path = typer.Argument(
            ..., help="Raw dataset (any layout hecktorseg reads) or a folder of DICOM files (imported first)."
        ),
        output_dir: Path = typer.Argument(..., help="Where OUTPUT_DIR/<PID>.nii.gz masks go."),
        model: list[Path] = typer.Option(
            ...,
            "--model",
            "-m",
            help="Checkpoint (ours or the original); repeat for an ensemble, or give a quoted glob "
            "pattern, e.g. 'runs/fold_*/best.pt' (the paper's 8-model ensemble).",
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
            200.0,  # hecktorseg.inference.MIN_GTVN_VOLUME_MM3 (a test keeps them equal)
            "--min-gtvn-volume",
            min=0.0,
            metavar="MM3",
            help="Drop GTVn (label 2) components smaller than MM3 cubic millimetres (0: keep all; the "
            "default was chosen on validation phantoms, see the training docs).",
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        backend: str = backend_option(),
        precision: str = precision_option(),
        tta_batch: int = tta_batch_option(),
        threads: Optional[int] = threads_option(),  # noqa: UP045
        workers: int = typer.Option(
            1, "--workers", min=0, help="Threads reading and resampling the next cases (0: none)."
        ),
        num_parts: int = typer.Option(1, "--num-parts", help="Split the cases into this many shares."),
        part_id: int = typer.Option(0, "--part-id", help="Which share to predict (0-based)."),
        force: bool = typer.Option(False, "--force", help="Overwrite existing predictions."),
        output_format: str = typer.Option(
            "nifti",
            "--output-format",
            help="nifti: OUTPUT_DIR/<PID>.nii.gz; rtstruct / seg: also <PID>_RTSTRUCT.dcm / <PID>_SEG.dcm on "
            "each patient's CT series (INPUT_DIR must then be a DICOM folder; needs the dicom extra).",
        ),
        preprocessing: str = typer.Option(
            "auto",
            "--preprocessing",
            help="auto: the authors' preprocessing for original-format checkpoints (rounded crop, 0 HU "
            "fill, PET statistics over the box), else the checkpoint's; original: the authors'; "
            "hecktorseg: ours (world-coordinate grid, -1024 HU fill, PET statistics over its field of view).",
        ),
        allow_implausible_intensities: bool = typer.Option(
            False,
            "--allow-implausible-intensities",
            help="Skip the check that the CT holds Hounsfield units (with air) and the PET SUV or "
            "Bq/ml (no -1000 background), which catches swapped files.",
        ),
    ) -> None:
        """Predict every case of INPUT_DIR and write OUTPUT_DIR/<PID>.nii.gz on the original CT grid.

        Binary models write 0/1; GTVp + GTVn models (3 outputs) write uint8 labels 0/1/2.
        """
        from rich.markup import escape

        from hecktorseg.errors import ConfigError
        from hecktorseg.inference import Predictor, PredictorConfig, predict_dataset

        if preprocessing not in ("auto", "original", "hecktorseg"):
            raise ConfigError(
                f"unknown --preprocessing {preprocessing!r}", hint="use auto, original or hecktorseg"
            )
        config = PredictorConfig(
            device=device,
            backend=backend,  # type: ignore[arg-type]  # checked by select_runtime
            precision=precision,  # type: ignore[arg-type]
            tta=tta,
            tta_batch=tta_batch,
            threshold=threshold,
            largest_component=largest_component,
            min_gtvn_volume=min_gtvn_volume,
            num_threads=threads,
            preprocessing=preprocessing,  # type: ignore[arg-type]
            check_intensities=not allow_implausible_intensities,
        )
        predictor = Predictor.from_checkpoints(_expand_models(model), config)
        err_console.print(f"{predictor!r}", highlight=False)
        described = {
            "original": "original (the authors': rounded crop, 0 HU outside the CT, PET statistics over the box)",
            "hecktorseg": "hecktorseg (world-coordinate grid, -1024 HU outside the CT, PET statistics over "
            "its field of view)",
        }.get(predictor.preprocessing_name, "custom (from the checkpoint)")
        err_console.print(f"preprocessing: {described}", highlight=False, soft_wrap=True)
        dicom_report = _predict_dicom_folder(input_dir, output_dir, predictor, output_format, force, workers)
        with progress_bar("predicting", disable=dicom_report is not None) as update:
            report = dicom_report or predict_dataset(
                input_dir,
                output_dir,
                predictor,
                layout=layout,
                bbox_table=bbox,
                save_probabilities=save_probabilities,
                save_uncertainty=save_uncertainty,
                num_parts=num_parts,
                part_id=part_id,
                force=force,
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
            err_console.print(
                f"[red]failed[/] {escape(f'{pid}: {reason_line(reason)}')}", highlight=False, soft_wrap=True
            )
        if report.failed:
            raise typer.Exit(code=1)


def _predict_dicom_folder(
    input_dir: Path, output_dir: Path, predictor: Predictor, output_format: str, force: bool, workers: int
) -> BatchReport | None:
    """Predict a DICOM folder (imported on the fly) and write ``output_format``; ``None`` if not DICOM."""
    from hecktorseg.errors import ConfigError
    from hecktorseg.inference import looks_like_dicom, predict_dicom

    is_dicom = looks_like_dicom(input_dir)
    if output_format == "nifti" and not is_dicom:
        return None
    if not is_dicom:
        raise ConfigError(
            f"--output-format {output_format} needs a folder of DICOM files as INPUT_DIR",
            path=input_dir,
            hint="give the DICOM export, or use --output-format nifti",
        )
    with progress_bar(f"predicting (DICOM → {output_format})") as update:
        return predict_dicom(
            input_dir,
            output_dir,
            predictor,
            output_format=output_format,
            force=force,
            progress=update,
            workers=workers,
        )


def _expand_models(paths: list[Path]) -> list[Path]:
    """Expand ``--model`` values that are glob patterns (and not existing files), sorted."""
    import glob

    from hecktorseg.errors import ConfigError

    out: list[Path] = []
    for path in paths:
        text = str(path)
        if path.exists() or not glob.has_magic(text):
            out.append(path)
            continue
        matches = sorted(glob.glob(text))  # noqa: PTH207 - a pattern with folders, relative or absolute
        if not matches:
            raise ConfigError(
                f"--model {text}: no file matches this pattern", hint="check the pattern or give the files"
            )
        out.extend(Path(m) for m in matches)
    return out
