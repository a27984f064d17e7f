"""``hecktorseg dicom import|export``: DICOM PET/CT in (SUV, RTSTRUCT labels), RTSTRUCT / DICOM-SEG out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hecktorseg.cli._common import console, err_console, handle_errors, progress_bar, reason_line

HELP = (
    "From the clinic and back: 'import' turns a folder of DICOM files (PET/CT, RTSTRUCT) into a "
    "HECKTOR 2025 dataset with SUV PET; 'export' writes label maps as RTSTRUCT or DICOM-SEG. "
    'Needs the dicom extra: pip install "hecktorseg[dicom]".'
)


def _summary(report: object, what: str) -> None:
    from rich.markup import escape

    from hecktorseg.reports import BatchReport

    assert isinstance(report, BatchReport)
    console.print(
        f"{report.total} patient(s): [green]{len(report.done)} {what}[/], {len(report.skipped)} up to date, "
        f"[{'red' if report.failed else 'green'}]{len(report.failed)} failed[/] → {report.output_dir}",
        highlight=False,
        soft_wrap=True,
    )
    for warning in report.warnings:
        err_console.print(
            f"[yellow]warning:[/] {escape(reason_line(warning))}", highlight=False, soft_wrap=True
        )
    if report.failed:
        err_console.print("[bold red]failed patients:[/]")
        for pid, reason in report.failed.items():
            err_console.print(
                f"  {pid}: {reason_line(reason)}", highlight=False, soft_wrap=True, markup=False
            )
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the ``dicom`` command group to ``app``."""
    group = typer.Typer(name="dicom", help=HELP, no_args_is_help=True)

    @group.command("import")
    @handle_errors
    def import_(
        source: Path = typer.Argument(
            ..., help="Folder of DICOM files (any depth, any names, patients mixed)."
        ),
        output_dir: Path = typer.Argument(..., help="HECKTOR 2025 dataset folder to write."),
        ct_series: Optional[str] = typer.Option(  # noqa: UP045 - Typer needs a runtime Optional
            None, "--ct-series", metavar="UID", help="CT SeriesInstanceUID for the patient that has it."
        ),
        pet_series: Optional[str] = typer.Option(  # noqa: UP045
            None, "--pet-series", metavar="UID", help="PET SeriesInstanceUID for the patient that has it."
        ),
        selection: Optional[Path] = typer.Option(  # noqa: UP045
            None,
            "--selection",
            help="CSV with PatientID,ct_series,pet_series for patients the rules cannot decide.",
        ),
        patient_weight: Optional[float] = typer.Option(  # noqa: UP045
            None,
            "--patient-weight",
            min=0.1,
            metavar="KG",
            help="Weight in kg (when PatientWeight is missing).",
        ),
        suv_factor: Optional[float] = typer.Option(  # noqa: UP045
            None, "--suv-factor", min=0.0, help="Factor from PET pixel values to SUV, used as is."
        ),
        gtvp_roi: Optional[str] = typer.Option(  # noqa: UP045
            None,
            "--gtvp-roi",
            metavar="REGEX",
            help="ROI names that are GTVp (default: GTVp, GTV-P, GTV_primary, GTVt, …).",
        ),
        gtvn_roi: Optional[str] = typer.Option(  # noqa: UP045
            None,
            "--gtvn-roi",
            metavar="REGEX",
            help="ROI names that are GTVn (default: GTVn, GTV_N1, GTVn_L2, GTV-LN, …).",
        ),
        force: bool = typer.Option(False, "--force", help="Redo patients that are already up to date."),
    ) -> None:
        """Import every patient of SOURCE into OUTPUT_DIR/<PID>/<PID>__CT.nii.gz, __PT.nii.gz (SUVbw), <PID>.nii.gz.

        Per patient a record OUTPUT_DIR/dicom_records/<PID>.json (series chosen, SUV inputs, ROI names → labels,
        warnings) and one summary OUTPUT_DIR/dicom_import.csv. Exit code 1 if a patient failed; the others are done.
        """
        from hecktorseg.dicom import ImportOptions, import_dicom, read_selection_table

        options = ImportOptions(
            ct_series=ct_series,
            pet_series=pet_series,
            patient_weight=patient_weight,
            suv_factor=suv_factor,
            gtvp_roi=gtvp_roi,
            gtvn_roi=gtvn_roi,
            selection=read_selection_table(selection) if selection is not None else {},
        )
        options.rules()  # a bad pattern fails before the indexing starts
        with progress_bar("dicom import") as progress:
            report = import_dicom(source, output_dir, options, force=force, progress=progress)
        _summary(report, "imported")

    @group.command("export")
    @handle_errors
    def export(
        labels_dir: Path = typer.Argument(
            ..., help="Folder of <PID>.nii.gz label maps (as predict writes them)."
        ),
        dicom_dir: Path = typer.Argument(..., help="Folder of the patients' DICOM files (their CT series)."),
        output_dir: Path = typer.Argument(..., help="Where <PID>_RTSTRUCT.dcm / <PID>_SEG.dcm go."),
        fmt: str = typer.Option("rtstruct", "--format", help="rtstruct or seg."),
        split_nodes: bool = typer.Option(
            False, "--split-nodes", help="RTSTRUCT: one ROI per connected node (GTVn_1, GTVn_2, …)."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
    ) -> None:
        """Write each label map of LABELS_DIR as an RTSTRUCT or DICOM-SEG on that patient's CT series."""
        from hecktorseg.dicom import export_labels

        with progress_bar(f"dicom export ({fmt})") as progress:
            report = export_labels(
                labels_dir,
                dicom_dir,
                output_dir,
                fmt=fmt,
                split_nodes=split_nodes,
                force=force,
                progress=progress,
            )
        _summary(report, "written")

    app.add_typer(group)
