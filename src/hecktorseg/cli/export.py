"""``hecktorseg export``: a checkpoint to ONNX or TorchScript, checked against eager PyTorch."""

from __future__ import annotations

from pathlib import Path

import typer

from hecktorseg.cli._common import console, handle_errors

_MAX_BATCH = 64
_MAX_SIDE = 512


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to ``app``."""

    @app.command("export")
    @handle_errors
    def export(
        checkpoint: Path = typer.Argument(
            ...,
            help="Checkpoint: hecktorseg's own (from 'train') or the original implementation's state dict.",
        ),
        output: Path = typer.Argument(..., help="Output file: *.onnx (ONNX) or *.pt (TorchScript)."),
        shape: str = typer.Option(
            "1,2,32,32,32",
            "--shape",
            help="Example input N,C,Z,Y,X for tracing and the check (sides multiples of 16); "
            "ONNX keeps batch and spatial axes dynamic.",
        ),
        verify: bool = typer.Option(
            True, "--verify/--no-verify", help="Compare the export with eager PyTorch."
        ),
        force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing output file."),
    ) -> None:
        """Export a model to ONNX or TorchScript and check it against eager PyTorch."""
        from hecktorseg.errors import ConfigError
        from hecktorseg.io import ensure_output_dir
        from hecktorseg.models import EXPORT_SUFFIXES, export_model, load_checkpoint, verify_export

        if output.suffix not in EXPORT_SUFFIXES:
            raise ConfigError(
                f"unknown export format {output.suffix or '(no suffix)'!r}",
                path=output,
                hint="name the output *.onnx (ONNX) or *.pt (TorchScript)",
            )
        try:
            dims = tuple(int(part) for part in shape.replace("x", ",").split(",") if part.strip())
        except ValueError:
            raise ConfigError(f"--shape must be integers N,C,Z,Y,X, got {shape!r}") from None
        if len(dims) != 5:
            raise ConfigError(f"--shape needs 5 integers N,C,Z,Y,X, got {shape!r}")
        if min(dims) < 1 or dims[0] > _MAX_BATCH or max(dims[2:]) > _MAX_SIDE:
            raise ConfigError(
                f"--shape {shape!r} is out of range: N and C must be at least 1, N at most {_MAX_BATCH} "
                f"and each side at most {_MAX_SIDE}",
                hint="the shape is only an example for tracing; a small one such as 1,2,32,32,32 is best",
            )
        if output.exists() and output.resolve() == checkpoint.resolve():
            raise ConfigError(
                "the output is the input checkpoint", path=output, hint="give another output file"
            )
        if output.exists() and not force:
            raise ConfigError("output exists", path=output, hint="pass --force to overwrite it")

        ensure_output_dir(output.parent)  # before the (slow) load: an unwritable target fails at once
        loaded = load_checkpoint(checkpoint)
        with console.status(f"exporting to {output} ..."):
            path = export_model(loaded.model, output, shape=dims, verify=False)
        if verify:
            import torch

            example = torch.randn(dims, generator=torch.Generator().manual_seed(0))
            with console.status("checking against eager PyTorch ..."):
                try:
                    method, diff = verify_export(path, loaded.model, example)
                except BaseException:  # a failed check leaves no output behind
                    path.unlink(missing_ok=True)
                    raise
            console.print(
                f"[green]wrote[/] {path} (matches eager: max |Δ| = {diff:.2g}, checked with {method})"
            )
        else:
            console.print(f"[green]wrote[/] {path} (not checked)")
