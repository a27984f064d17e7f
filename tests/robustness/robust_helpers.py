"""Helpers of the robustness corpus: CLI runners, error checks and tiny datasets.

Every bad input is generated here or in the tests from small synthetic phantoms
(48×48×24 CT, 16³ preprocessing grid); no data file is stored. A case passes if
it ends in one of two ways:

* a clear error: exit status ≠ 0, no traceback, one line naming the file and
  the problem (:func:`assert_clean_error`), nothing half-written, the other
  patients processed;
* or a correct result.

CLI calls that could hang if a fix regressed (FIFOs, ``/dev/zero``, locks, killed
processes) run in a subprocess with a timeout (:func:`run_cli`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

import hecktorseg

TIMEOUT_S = 120
"""Upper bound for one CLI subprocess; a hang fails the test instead of blocking the suite."""

N_GOOD = 3
SRC = str(Path(hecktorseg.__file__).resolve().parents[1])


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout's package first, one thread each."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["COLUMNS"] = "250"  # rich: no wrapping of the one-line errors
    env["NO_COLOR"] = "1"
    return env


def run_cli(
    args: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = TIMEOUT_S,
    env: Mapping[str, str | None] | None = None,
    prefix: Sequence[str] = (),
) -> tuple[int, str]:
    """Run ``python -m hecktorseg ARGS`` in a subprocess; fail the test if it does not end in time.

    ``env`` sets (or, with ``None``, removes) environment variables; ``prefix`` is a command
    that runs Python (e.g. ``setpriv ...`` to run as another user).
    """
    cmd = [*prefix, sys.executable, "-m", "hecktorseg", *(str(a) for a in args)]
    environment = cli_env()
    for key, value in (env or {}).items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=environment, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"hecktorseg {' '.join(cmd[len(prefix) + 3 :])} hung (no exit within {timeout} s): {exc.stderr!r}"
        )
    return proc.returncode, proc.stdout + proc.stderr


def invoke(args: Sequence[str | os.PathLike[str]]) -> tuple[int, str]:
    """Run the CLI in-process (fast; only for calls that cannot hang)."""
    from hecktorseg.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.output}") from (
            result.exception
        )
    return result.exit_code, result.output


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "error:" in line or "failed" in line]


def assert_clean_error(code: int, output: str, *needles: str) -> str:
    """Exit ≠ 0, no traceback, and one line holding every needle (file and problem); return it."""
    assert code != 0, f"expected an error, got exit 0:\n{output}"
    assert "Traceback" not in output, output
    assert "unexpected" not in output.lower(), output
    matching = [line for line in output.splitlines() if all(n.lower() in line.lower() for n in needles)]
    assert matching, f"no line mentions all of {needles}:\n{output}"
    return matching[0]


def case_line(output: str, patient_id: str) -> str:
    """The line reporting ``patient_id``'s failure in a batch command's output."""
    lines = [
        line
        for line in output.splitlines()
        if patient_id in line and ("failed" in line or line.strip().startswith(f"{patient_id}:"))
    ]
    assert lines, f"{patient_id} is not reported as failed:\n{output}"
    return lines[-1]


def write_tiny_dataset(root: Path, n_cases: int, edition: str = "2020") -> list[str]:
    """A tiny synthetic dataset; returns the sorted patient ids."""
    from hecktorseg.data.synthetic import SyntheticConfig, write_synthetic_dataset

    cases = write_synthetic_dataset(root, n_cases=n_cases, edition=edition, config=SyntheticConfig.tiny())
    return sorted(c.patient_id for c in cases)


def copy_dataset(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest
