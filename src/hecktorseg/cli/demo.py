"""``hecktorseg demo``: the whole pipeline on embedded synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from hecktorseg.cli._common import console, err_console, handle_errors, with_config_options
from hecktorseg.demo import DemoConfig


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to ``app``."""

    @app.command("demo")
    @handle_errors
    @with_config_options(DemoConfig)
    def demo(
        out_dir: Path = typer.Argument(
            Path("hecktorseg-demo"), help="Folder for everything the demo writes."
        ),
        force: bool = typer.Option(False, "--force", help="Replace the folder's previous content."),
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """Synthesise PET/CT phantoms, preprocess, train, predict, score and write report.md.

        Runs in a few minutes on 2 CPU cores, no data or GPU needed; it trains and predicts on a
        GPU when one is visible (--device cpu keeps it on the CPU). The default is the paper's
        2020 task (GTVt); --edition 2025 (or 2026) trains a GTVp + GTVn model on phantoms in
        that layout and reports the 2025 scores.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from hecktorseg.config import resolve_config
        from hecktorseg.demo import run_demo

        cfg = resolve_config(DemoConfig, overrides=overrides)
        progress = Progress(
            TextColumn("[bold]{task.description:<11}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[message]}"),
            console=err_console,
        )
        tasks: dict[str, Any] = {}

        def update(stage: str, completed: int, total: int, message: str = "") -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total, message="")
            progress.update(tasks[stage], completed=completed, total=total, message=message)

        with progress:
            result = run_demo(out_dir, cfg, force=force, progress=update)
        if result.edition == "2020":
            console.print(
                f"[bold green]done[/] in {result.seconds / 60:.1f} min — held-out mean Dice "
                f"(official 2020 rules): [bold]{result.mean_dice:.3f}[/] "
                f"(best validation Dice {result.best_val_dice:.3f})"
            )
        else:
            s = result.summary
            console.print(
                f"[bold green]done[/] in {result.seconds / 60:.1f} min — held-out, {result.edition} rules: "
                f"GTVp mean Dice [bold]{s.get('gtvp_mean_dice', float('nan')):.3f}[/], "
                f"GTVn DSCagg [bold]{s.get('gtvn_dsc_agg', float('nan')):.3f}[/], "
                f"GTVn F1agg [bold]{s.get('gtvn_f1_agg', float('nan')):.3f}[/] "
                f"(best validation score {result.best_val_dice:.3f})"
            )
        console.print(f"report: {result.report}")
