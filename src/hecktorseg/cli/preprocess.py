"""``hecktorseg preprocess``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import typer

from hecktorseg.cli._common import (
    console,
    err_console,
    handle_errors,
    progress_bar,
    reason_line,
    with_config_options,
)
from hecktorseg.preprocessing import GRID_MULTIPLE
from hecktorseg.preprocessing.config import PreprocessConfig

HELP = """Resample PET, CT (and label maps) onto one reference grid in the head-and-neck box.

Writes OUTPUT_DIR/<PID>/<PID>_ct.nii.gz, <PID>_pt.nii.gz, <PID>_ct_gtvt.nii.gz and
OUTPUT_DIR/manifest.json. Cases already up to date are skipped (--force redoes them).
Settings come from the defaults (a 144x144x176 mm box for layouts with lymph nodes:
2022, 2025, 2026; 144 mm otherwise; or --preset paper: the authors' crop, 0 HU fill and
PET statistics over the box), then --config YAML, then the flags below.
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
        preset: Optional[str] = typer.Option(  # noqa: UP045
            None,
            "--preset",
            help="Base settings: 'paper' = the original preprocessing (legacy rounded crop, 0 HU outside "
            "the CT, PET statistics over the whole box); 'default' = ours. --config and flags override it.",
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
        allow_missing_labels: bool = typer.Option(
            False,
            "--allow-missing-labels",
            help="In a dataset where most patients have a label map, preprocess the few without one "
            "as unlabelled (default: each of them fails).",
        ),
        allow_implausible_intensities: bool = typer.Option(
            False,
            "--allow-implausible-intensities",
            help="Skip the check that the CT holds Hounsfield units (with air) and the PET SUV or "
            "Bq/ml (no -1000 background), which catches swapped files.",
        ),
        *,
        overrides: dict[str, Any],
    ) -> None:

        from hecktorseg.config import resolve_config
        from hecktorseg.io import discover_cases
        from hecktorseg.preprocessing import (
            check_trainable_size,
            default_preprocess_config,
            preprocess_dataset,
            select_part,
        )

        cases = discover_cases(input_dir, layout=layout, bbox_table=bbox, strict=False)
        # the preset (or the layout's default: a taller box where labels include GTVn), then the
        # YAML, then the flags
        layout_default = default_preprocess_config(cases[0].layout if cases else layout)
        config = resolve_config(
            PreprocessConfig,
            preset=preset,
            presets={"paper": PreprocessConfig.paper, "default": lambda: layout_default},
            base=layout_default,
            yaml=config_file,
            section="preprocess",
            overrides=overrides,
        )
        check_trainable_size(config)
        if cases:
            _warn_short_box(config, default_preprocess_config(cases[0].layout), preset)
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
                check_intensities=not allow_implausible_intensities,
                allow_missing_labels=allow_missing_labels,
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
            err_console.print(f"[yellow]warning:[/] {reason_line(warning)}", highlight=False, soft_wrap=True)
        if report.manifest_path is not None:
            console.print(f"manifest: {report.manifest_path}", highlight=False, soft_wrap=True)
        if report.failed:
            err_console.print("[bold red]failed cases:[/]")
            for pid, reason in report.failed.items():
                err_console.print(
                    f"  {pid}: {reason_line(reason)}", highlight=False, soft_wrap=True, markup=False
                )
            raise typer.Exit(code=1)


def _warn_short_box(config: PreprocessConfig, layout_default: PreprocessConfig, preset: str | None) -> None:
    """Warn when the box is shorter than the measured default of a layout whose labels include GTVn."""
    height, wanted = config.auto_box_size[2], layout_default.auto_box_size[2]
    if height >= wanted:
        return
    source = "--preset paper keeps the paper's box (GTVp only)" if preset == "paper" else "the settings give"
    if config.box_size_mm is None:
        z = math.ceil(wanted / config.spacing[2] / GRID_MULTIPLE) * GRID_MULTIPLE
        fix = f"--size {config.size[0]},{config.size[1]},{z}"
    else:
        fix = f"--box-size-mm {config.box_size_mm[0]:g},{config.box_size_mm[1]:g},{wanted:g}"
    err_console.print(
        f"[yellow]warning:[/] {source}: a box {height:g} mm tall, but this dataset's labels include "
        f"lymph nodes (GTVn), which need {wanted:g} mm to stay in it; nodes below it are lost "
        f"(counted in the manifest). {fix} keeps them.",
        highlight=False,
        soft_wrap=True,
    )
