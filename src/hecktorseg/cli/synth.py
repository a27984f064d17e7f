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
    ) -> None:
        """Generate synthetic head-and-neck PET/CT phantoms with tumour masks and box tables."""
        import yaml

        from hecktorseg.config import load_yaml, merge
        from hecktorseg.data.synthetic import SyntheticConfig, write_synthetic_dataset
        from hecktorseg.errors import DataError
        from hecktorseg.io import parse_layout

        layout = parse_layout(edition)
        if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
            raise DataError(
                "output folder is not empty", path=out_dir, hint="choose an empty folder or pass --force"
            )
        base = SyntheticConfig.tiny() if tiny else SyntheticConfig()
        if config is not None:
            # validate the file strictly, then apply only the fields it sets on top of the preset
            load_yaml(SyntheticConfig, config, section="synthetic")
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
            if isinstance(data, dict) and isinstance(data.get("synthetic"), dict):
                data = data["synthetic"]
            base = merge(base, data, where=str(config))
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
