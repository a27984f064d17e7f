"""The ``hecktorseg`` command-line interface: a thin Typer layer over the public API.

Heavy libraries (torch, SimpleITK, matplotlib) are imported inside each
command, so ``hecktorseg --help`` answers at once.
"""

from __future__ import annotations

import importlib

import typer

from hecktorseg._version import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="hecktorseg",
    help="Head-and-neck tumour (GTVp) and lymph node (GTVn) segmentation in PET/CT — the HECKTOR 2020 winning model as a library.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# One module per sub-command; each defines ``register(app)``.
_COMMAND_MODULES = (
    "demo",
    "synth",
    "preprocess",
    "train",
    "predict",
    "dicom",
    "evaluate",
    "visualize",
    "review",
    "export",
    "container",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"hecktorseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output (-v: debug)."),
) -> None:
    """Head-and-neck tumour segmentation in PET/CT."""
    from hecktorseg.cli._common import setup_logging

    setup_logging(verbose)


for _name in _COMMAND_MODULES:
    importlib.import_module(f"hecktorseg.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
