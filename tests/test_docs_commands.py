"""The shell commands of README.md and docs/submission.rst run as written, in order.

Blocks to run are marked in the text — ``<!-- docs-test: run -->`` before a fenced ``bash``
block in the README, ``.. docs-test: run`` before a ``.. code-block:: bash`` in the reST page —
and run one after another in one fresh folder with ``bash -e`` (``hecktorseg`` is this
interpreter's ``python -m hecktorseg``). Every other ``bash`` block is checked without running:
its syntax (``bash -n``), and every ``hecktorseg`` command in it against the CLI's own parser
(the command exists, every flag exists and takes its value). Those are the newcomer's demo and
test-suite commands (minutes; run by ``tests/test_examples.py`` and by CI itself), ``pip``,
``nox`` and Docker (no daemon here).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import SimpleITK as sitk
import typer.main

from hecktorseg.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SUBMISSION = ROOT / "docs" / "submission.rst"

_MD_BLOCK = re.compile(r"(<!-- docs-test: run -->\n)?```bash\n(.*?)```", re.S)
_RST_BLOCK = re.compile(r"(\.\. docs-test: run\n\n)?\.\. code-block:: bash\n\n((?:(?:   .*)?\n)+)")


def markdown_blocks(text: str) -> list[tuple[bool, str]]:
    """``(marked to run, script)`` of every fenced ``bash`` block, in order."""
    return [(bool(m.group(1)), m.group(2)) for m in _MD_BLOCK.finditer(text)]


def rst_blocks(text: str) -> list[tuple[bool, str]]:
    """``(marked to run, script)`` of every ``.. code-block:: bash``, in order (indentation removed)."""
    blocks = []
    for m in _RST_BLOCK.finditer(text):
        lines = [line[3:] for line in m.group(2).splitlines()]
        blocks.append((bool(m.group(1)), "\n".join(lines).strip() + "\n"))
    return blocks


def hecktorseg_commands(script: str) -> list[list[str]]:
    """The arguments of every ``hecktorseg`` command in ``script`` (continuation lines joined)."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|;", line.split(" #")[0]):
            words = shlex.split(part, comments=True)
            if words and words[0] == "hecktorseg":
                found.append(words[1:])
    return found


def check_with_the_cli_parser(args: list[str]) -> None:
    """Parse ``args`` with the Typer app's own parser, without running the command.

    Raises the parser's usage error on an unknown command or flag, or a bad value.
    """
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("hecktorseg", list(args))
    while hasattr(command, "resolve_command"):  # a group: descend into the named command
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        assert rest, f"no command after {' '.join(args)!r}"
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)


def test_the_blocks_are_marked_as_expected() -> None:
    readme = markdown_blocks(README.read_text(encoding="utf-8"))
    page = rst_blocks(SUBMISSION.read_text(encoding="utf-8"))
    assert [run for run, _ in readme].count(True) == 2 and [run for run, _ in page].count(True) == 4
    # the newcomer's two commands stay as they are, checked but not run here
    assert ("pip install . && hecktorseg demo\n") in [b for _, b in readme]
    assert ("pip install nox && nox -s tests\n") in [b for _, b in readme]


@pytest.mark.parametrize("path", [README, SUBMISSION], ids=lambda p: p.name)
def test_every_command_parses(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    blocks = markdown_blocks(text) if path.suffix == ".md" else rst_blocks(text)
    n = 0
    for _, script in blocks:
        proc = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
        assert proc.returncode == 0, f"{path.name}: {script}\n{proc.stderr}"
        for args in hecktorseg_commands(script):
            check_with_the_cli_parser(args)
            n += 1
    assert n >= 10


# Typer raises its own usage errors (typer.exceptions) in recent releases and click's before; the
# class names are the same in both.
_USAGE_ERRORS = {"NoSuchOption", "UsageError", "BadParameter"}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["train", "pre", "runs", "--no-such-flag"], "--no-such-flag"),
        (["trian", "pre", "runs"], "trian"),
        (["train", "pre", "runs", "--epochs", "two"], "integer"),
    ],
    ids=["flag", "command", "value"],
)
def test_a_bad_flag_is_caught_by_the_parse_check(args: list[str], says: str) -> None:
    with pytest.raises(Exception, match=says) as caught:  # the class depends on the Typer release
        check_with_the_cli_parser(args)
    assert caught.type.__name__ in _USAGE_ERRORS and not isinstance(caught.value, AssertionError)


def _run_in_order(scripts: list[str], folder: Path) -> None:
    """Run ``scripts`` one after another in ``folder`` with ``bash -e``, as a reader would."""
    folder.mkdir()
    prelude = f'hecktorseg() {{ {shlex.quote(sys.executable)} -m hecktorseg "$@"; }}\n'
    prelude += f'python() {{ {shlex.quote(sys.executable)} "$@"; }}\nset -euo pipefail\n'
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for script in scripts:
        proc = subprocess.run(
            ["bash", "-c", prelude + script], cwd=folder, env=env, capture_output=True, text=True,
            timeout=3600, check=False,  # a hang guard only: the blocks take a minute or two on idle cores
        )  # fmt: skip
        assert proc.returncode == 0, f"{script}\n--- stderr:\n{proc.stderr[-3000:]}"


def _gc_output(folder: Path) -> sitk.Image:
    return sitk.ReadImage(str(folder / "images/tumor-lymph-node-segmentation/output.mha"))


@pytest.mark.slow
def test_readme_blocks_run_as_written_in_order(tmp_path: Path) -> None:
    _run_in_order(
        [s for run, s in markdown_blocks(README.read_text(encoding="utf-8")) if run], tmp_path / "r"
    )
    here = tmp_path / "r"
    for name in ("runs/fold_0/best.pt", "runs25/fold_0/best.pt", "model.pt", "image/Dockerfile"):
        assert (here / name).is_file(), name
    for name in ("scores", "scores25"):
        assert (here / name / "summary.json").is_file(), name
    assert list((here / "pictures").glob("*.png"))


@pytest.mark.slow
def test_submission_page_blocks_run_as_written_in_order(tmp_path: Path) -> None:
    _run_in_order([s for run, s in rst_blocks(SUBMISSION.read_text(encoding="utf-8")) if run], tmp_path / "s")
    here = tmp_path / "s"
    for name in (
        "runs/fold_0/best.pt",
        "runs/fold_1/best.pt",
        "runs26/fold_0/best.pt",
        "gc-image/Dockerfile",
    ):
        assert (here / name).is_file(), name
    for name in ("scores", "scores26"):
        assert (here / name / "summary.json").is_file(), name
    ct_size = sitk.ReadImage(str(here / "gc/input/images/ct/ct.mha")).GetSize()
    for out in ("gc/output", "gc/output26", "gc/out-image"):
        assert _gc_output(here / out).GetSize() == ct_size, out
