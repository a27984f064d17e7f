"""``hecktorseg preprocess``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from hecktorseg.cli._common import console, err_console, handle_errors, progress_bar, with_config_options
from hecktorseg.preprocessing.config import PreprocessConfig

HELP = """Resample PET, CT (and label maps) onto one reference grid in the head-and-neck box.

Writes OUTPUT_DIR/<PID>/<PID>_ct.nii.gz, <PID>_pt.nii.gz, <PID>_ct_gtvt.nii.gz and
OUTPUT_DIR/manifest.json. Cases already up to date are skipped (--force redoes them).
Settings come from the defaults (a 144x144x176 mm box for layouts with lymph nodes:
2022, 2025, 2026; 144 mm otherwise), then --config YAML, then the flags below.
Exit code 1 if any case failed; the others are finished anyway.
"""


def register(app: typer.Typer) -> None:
    """Add the ``preprocess`` command to ``app``."""

    @app.command("preprocess", help=HELP)
    @handle_errors
    @with_config_options(PreprocessConfig)
    def preprocess(
        input_dir: Path = typer.Argument(
            ..., help="Dataset folder (HECKTOR 2020/2021/2022/2025/2026 or nnU-Net layout)."
        ),
        output_dir: Path = typer.Argument(..., help="Folder for the preprocessed cases and manifest.json."),
        bbox: Optional[Path] = typer.Option(  # noqa: UP045 - Typer needs a runtime Optional
            None, "--bbox", help="Box table CSV (PatientID,x1,x2,y1,y2,z1,z2) instead of the layout's own."
        ),
        config_file: Optional[Path] = typer.Option(  # noqa: UP045
            None, "--config", help="YAML config (top level, or under a 'preprocess:' key)."
        ),
        layout: Optional[str] = typer.Option(  # noqa: UP045
            None,
            "--layout",
            help="Force the dataset layout: 2020, 2021, 2022, 2025, 2026 or nnunet (default: detect).",
        ),
        workers: int = typer.Option(1, "--workers", "-j", min=1, help="Cases processed in parallel."),
        num_parts: int = typer.Option(
            1, "--num-parts", min=1, help="Split the cases into this many parts (e.g. a Slurm array)."
        ),
        part_id: int = typer.Option(
            0, "--part-id", min=0, help="Which part to process, 0..num-parts-1 (e.g. $SLURM_ARRAY_TASK_ID)."
        ),
        force: bool = typer.Option(False, "--force", help="Redo cases that are already up to date."),
        *,
        overrides: dict[str, Any],
    ) -> None:
        import yaml

        from hecktorseg.config import load_yaml, merge
        from hecktorseg.io import discover_cases
        from hecktorseg.preprocessing import default_preprocess_config, preprocess_dataset, select_part

        cases = discover_cases(input_dir, layout=layout, bbox_table=bbox, strict=False)
        # the layout's default (a taller box where labels include GTVn), then the YAML, then the flags
        config = default_preprocess_config(cases[0].layout if cases else layout)
        if config_file is not None:
            load_yaml(PreprocessConfig, config_file, section="preprocess")  # validates the file strictly
            data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            if isinstance(data, dict) and isinstance(data.get("preprocess"), dict):
                data = data["preprocess"]
            config = merge(config, data, where=str(config_file))
        config = merge(config, overrides, where="command line")
        select_part(cases, num_parts, part_id)  # checks --num-parts/--part-id before the bar starts
        with progress_bar("preprocess") as progress:
            report = preprocess_dataset(
                cases,
                output_dir,
                config,
                workers=workers,
                num_parts=num_parts,
                part_id=part_id,
                force=force,
                progress=progress,
            )
        part = f" (part {part_id} of {num_parts})" if num_parts > 1 else ""
        console.print(
            f"{report.total} case(s){part}: [green]{len(report.done)} done[/], "
            f"{len(report.skipped)} up to date, "
            f"[{'red' if report.failed else 'green'}]{len(report.failed)} failed[/]",
            highlight=False,
        )
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        if report.manifest_path is not None:
            console.print(f"manifest: {report.manifest_path}", highlight=False, soft_wrap=True)
        if report.failed:
            err_console.print("[bold red]failed cases:[/]")
            for pid, reason in report.failed.items():
                err_console.print(f"  {pid}: {reason}", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(code=1)
