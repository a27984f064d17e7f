"""``hecktorseg synth``: write a synthetic PET/CT dataset in one of the HECKTOR layouts."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hecktorseg.cli._common import console, handle_errors, progress_bar


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command to ``app``."""

    @app.command("synth")
    @handle_errors
    def synth(
        out_dir: Path = typer.Argument(
            ..., help="Folder to write the dataset into (it must be empty unless --force)."
        ),
        cases: int = typer.Option(8, "--cases", "-n", min=1, help="Number of patients."),
        edition: str = typer.Option(
            "2020",
            "--edition",
            "-e",
            help="Dataset layout: 2020, 2021, 2022 (with lymph nodes), 2025 or 2026 (nodes at neck levels II–IV, clinical table) or nnunet.",
        ),
        seed: int = typer.Option(0, "--seed", "-s", help="Random seed (same seed, same files)."),
        tiny: bool = typer.Option(
            False, "--tiny", help="Small, coarse phantoms (CT 48×48×24) for quick tests."
        ),
        config: Optional[Path] = typer.Option(  # noqa: UP045 - Typer needs a runtime Optional
            None,
            "--config",
            "-c",
            help="YAML file with SyntheticConfig fields (top level or under 'synthetic:').",
        ),
        force: bool = typer.Option(False, "--force", "-f", help="Write into a non-empty folder."),
        fmt: str = typer.Option(
            "nifti",
            "--format",
            help="nifti: the --edition layout; dicom: a flat DICOM export (CT, PET in Bq/ml, RTSTRUCT, "
            "distractor series) for 'hecktorseg dicom import' (needs the dicom extra).",
        ),
    ) -> None:
        """Generate synthetic head-and-neck PET/CT phantoms with tumour masks and box tables."""
        from hecktorseg.config import resolve_config
        from hecktorseg.data.synthetic import SyntheticConfig, write_synthetic_dataset
        from hecktorseg.errors import DataError
        from hecktorseg.io import parse_layout

        if fmt not in ("nifti", "dicom"):
            raise DataError(f"unknown --format {fmt!r}", hint="use nifti or dicom")
        layout = parse_layout(edition)
        if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
            raise DataError(
                "output folder is not empty", path=out_dir, hint="choose an empty folder or pass --force"
            )
        base = resolve_config(
            SyntheticConfig,
            base=SyntheticConfig.tiny() if tiny else SyntheticConfig(),
            yaml=config,
            section="synthetic",
        )
        if fmt == "dicom":
            from hecktorseg.data import write_synthetic_dicom

            with progress_bar("synth dicom") as progress:
                ids = write_synthetic_dicom(
                    out_dir, n_cases=cases, seed=seed, config=base, progress=progress, force=force
                )
            console.print(f"wrote {len(ids)} patients as DICOM files to {out_dir}")
            return
        with progress_bar(f"synth {layout.value}") as progress:
            written = write_synthetic_dataset(
                out_dir,
                n_cases=cases,
                edition=layout,
                seed=seed,
                config=base,
                progress=progress,
                force=force,
            )
        console.print(f"wrote {len(written)} cases (layout {layout.value}) to {out_dir}")
