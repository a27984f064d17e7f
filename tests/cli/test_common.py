"""Config flags and error display shared by the CLI commands."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import pytest
import typer
from typer.testing import CliRunner

from hecktorseg.cli._common import error_line, flag_hint, handle_errors, reason_line, with_config_options
from hecktorseg.config import merge
from hecktorseg.errors import DataError


@attrs.frozen
class Cfg:
    spacing: tuple[float, float, float] = attrs.field(
        default=(1.0, 1.0, 1.0), metadata={"help": "voxel size"}
    )
    mode: Literal["a", "b"] = attrs.field(default="a", metadata={"help": "mode"})
    amp: bool | None = attrs.field(default=None, metadata={"help": "amp"})
    epochs: int = attrs.field(default=3, metadata={"help": "epochs"})


def _app(seen: list[Cfg]) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @handle_errors
    @with_config_options(Cfg)
    def run(name: str, overrides: dict[str, Any]) -> None:
        if name == "boom":
            raise DataError("broken file", path="x.nii.gz", hint="fix it")
        seen.append(merge(Cfg(), overrides))

    @app.command()
    def other() -> None:
        """Second command so Typer keeps sub-command names."""

    return app


def test_flags_override_fields() -> None:
    seen: list[Cfg] = []
    result = CliRunner().invoke(_app(seen), ["run", "x", "--spacing", "2", "--no-amp", "--epochs", "5"])
    assert result.exit_code == 0, result.output
    assert seen == [Cfg(spacing=(2.0, 2.0, 2.0), amp=False, epochs=5)]
    result = CliRunner().invoke(_app(seen), ["run", "x", "--spacing", "1,2,3.5"])
    assert seen[-1].spacing == (1.0, 2.0, 3.5)
    assert seen[-1].amp is None


def test_bad_values_and_library_errors_give_one_line() -> None:
    result = CliRunner().invoke(_app([]), ["run", "x", "--mode", "c"])
    assert result.exit_code == 1
    assert "mode" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(_app([]), ["run", "boom"])
    assert result.exit_code == 1
    assert "x.nii.gz: broken file — fix it" in result.output


def test_help_lists_config_fields() -> None:
    result = CliRunner().invoke(_app([]), ["run", "--help"])
    assert result.exit_code == 0
    for flag in ("--spacing", "--mode", "--amp", "--no-amp", "--epochs"):
        assert flag in result.output


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        ("pass force=True to replace it", "pass --force to replace it"),
        ("or set check_label_grid=False to use it anyway", "or set --no-check-label-grid to use it anyway"),
        ("use e.g. size=(144, 144, 160)", "use e.g. --size 144,144,160"),
        (
            "give a box table (bbox_table=, columns PatientID,x1)",
            "give a box table (--bbox, columns PatientID,x1)",
        ),
        ("or use box_source=auto or box_source=pet", "or use --box-source auto or --box-source pet"),
        ('use device="cpu"', "use --device cpu"),
        ("pass check_intensities=False if right", "pass --allow-implausible-intensities if right"),
        (
            "(sbatch --array=0-(P-1)) use part_id=$SLURM_ARRAY_TASK_ID",
            "(sbatch --array=0-(P-1)) use --part-id $SLURM_ARRAY_TASK_ID",
        ),
        ("or lower brain_suv_threshold=", "or lower --brain-suv-threshold"),
        ("no parameter here: keep --resume as it is", "no parameter here: keep --resume as it is"),
    ],
)
def test_flag_hint_turns_parameters_into_flags(hint: str, expected: str) -> None:
    assert flag_hint(hint) == expected


def test_error_line_translates_only_the_hint() -> None:
    exc = DataError("size=3 is odd", path="a.yaml", hint="pass force=True")
    assert error_line(exc) == "a.yaml: size=3 is odd — pass --force"
    assert reason_line(str(exc)) == "a.yaml: size=3 is odd — pass --force"
    assert reason_line("no hint, force=True") == "no hint, force=True"


def test_cli_shows_library_hints_as_flags() -> None:
    app = typer.Typer()

    @app.command()
    @handle_errors
    def run() -> None:
        raise DataError("output exists", path="out", hint="choose another folder or pass force=True")

    @app.command()
    def other() -> None:
        """Second command so Typer keeps sub-command names."""

    result = CliRunner().invoke(app, ["run"])
    assert result.exit_code == 1
    assert "pass --force" in result.output and "force=True" not in result.output
