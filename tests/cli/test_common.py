"""Config flags and error display shared by the CLI commands."""

from __future__ import annotations

from typing import Any, Literal

import attrs
import typer
from typer.testing import CliRunner

from hecktorseg.cli._common import handle_errors, with_config_options
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
