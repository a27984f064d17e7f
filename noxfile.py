"""Developer sessions for hecktorseg: ``nox -s tests lint typecheck docs demo bench build``.

Every session that needs PyTorch installs it *first*, from the requirement in
the environment variable ``HECKTORSEG_TORCH_SPEC`` (default ``torch==2.13.0``),
and only then installs hecktorseg. Pin the build you want there — for example
``HECKTORSEG_TORCH_SPEC="torch==2.5.1"`` or a path to a local wheel — so that
no session silently pulls a multi-gigabyte CUDA build. The package itself only
asks for ``torch>=2.2``.

Sessions reuse their virtual environments (``nox -R`` also skips the installs).
Arguments after ``--`` go to the tool the session runs, e.g.
``nox -s tests -- tests/io -x``.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]

ROOT = Path(__file__).resolve().parent
TORCH_SPEC = os.environ.get("HECKTORSEG_TORCH_SPEC", "torch==2.13.0")
DOCS_OUT = ROOT / "docs" / "_build" / "html"
# How ``nox -s bench`` makes a benchmark script small: its own quick switch if it has one
# (first match wins), otherwise small values for the size options it declares.
BENCH_QUICK_FLAGS = ("--quick", "--smoke", "--tiny")
BENCH_SMALL_VALUES = {
    "--size": "32",
    "--filters": "4",
    "--reps": "1",
    "--repeats": "1",
    "--cases": "2",
    "--n-cases": "2",
    "--epochs": "1",
    "--threads": "2",
    "--models": "2",
    "--steps": "1",
    "--ct-size": "96,96,40",
    "--pet-size": "48,48,40",
}
BENCH_SMALL_SWITCHES = ("--no-memory",)


def _install(session: nox.Session, *extras: str, editable: bool = True) -> None:
    """Install torch from ``HECKTORSEG_TORCH_SPEC``, then hecktorseg with ``extras``."""
    session.install(*TORCH_SPEC.split())
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    if editable:
        session.install("-e", target)
    else:
        session.install(target)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest; two workers unless arguments are given)."""
    _install(session, "test", "export", "dicom")
    args = session.posargs or ["-n", "2"]
    session.run("python", "-m", "pytest", *args, env={"MPLBACKEND": "Agg"})


@nox.session
def lint(session: nox.Session) -> None:
    """``ruff check`` and ``ruff format --check`` over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", *(session.posargs or ["."]))
    session.run("ruff", "format", "--check", *(session.posargs or ["."]))


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy`` in strict mode (configured in pyproject.toml) over ``src/hecktorseg``."""
    _install(session, "typecheck", "dicom")
    session.run("mypy", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML documentation with warnings as errors.

    Set ``HECKTORSEG_DOCS_INTERSPHINX=1`` to link to the Python, NumPy, PyTorch
    and SimpleITK docs (needs network access).
    """
    _install(session, "docs", "dicom")
    if DOCS_OUT.exists() and "--keep" not in session.posargs:
        shutil.rmtree(DOCS_OUT)
    args = [a for a in session.posargs if a != "--keep"]
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(DOCS_OUT), *args,
        env={"MPLBACKEND": "Agg"},
    )  # fmt: skip
    session.log(f"Documentation: {DOCS_OUT / 'index.html'}")


@nox.session
def demo(session: nox.Session) -> None:
    """Run ``hecktorseg demo`` end to end into a temporary folder (or the folder given after ``--``)."""
    _install(session, editable=False)
    out = session.posargs[0] if session.posargs else str(Path(session.create_tmp()) / "demo")
    if not session.posargs and Path(out).exists():
        shutil.rmtree(out)
    session.run("hecktorseg", "demo", out, *session.posargs[1:], env={"MPLBACKEND": "Agg"})


@nox.session
def bench(session: nox.Session) -> None:
    """Smoke-run every script in ``benchmarks/`` with its quick flag (full runs: pass ``-- --full``)."""
    scripts = sorted(p for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        session.skip("no benchmark scripts in benchmarks/")
    _install(session, "dicom")  # bench_dicom.py
    full = "--full" in session.posargs
    extra = [a for a in session.posargs if a != "--full"]
    for script in scripts:
        quick = [] if full else _quick_args(script.read_text(encoding="utf-8"))
        if not full and not quick:
            session.warn(f"{script.name}: declares no quick or size option; running it as is")
        session.log(f"benchmark: {script.name} {' '.join(quick + extra)}")
        session.run("python", str(script), *quick, *extra, env={"MPLBACKEND": "Agg"})


def _quick_args(source: str) -> list[str]:
    """Arguments that make a benchmark script (given its source text) run small and fast."""
    for flag in BENCH_QUICK_FLAGS:
        if f'"{flag}"' in source or f"'{flag}'" in source:
            return [flag]
    args: list[str] = []
    for flag, value in BENCH_SMALL_VALUES.items():
        if f'"{flag}"' in source or f"'{flag}'" in source:
            args += [flag, value]
    return args + [flag for flag in BENCH_SMALL_SWITCHES if f'"{flag}"' in source or f"'{flag}'" in source]


def _check_metadata(session: nox.Session, wheel: Path) -> None:
    """Check the wheel's core metadata carries what PyPI shows (cheap stand-in for ``twine check``)."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(zf.read(name).decode("utf-8"))
        files = zf.namelist()
    problems = []
    for field in ("Name", "Version", "Summary", "Requires-Python", "Description-Content-Type"):
        if not meta.get(field):
            problems.append(f"missing {field}")
    if not (meta.get("License-Expression") or meta.get("License")):
        problems.append("missing License / License-Expression")
    if len(meta.get_all("Classifier") or []) < 3:
        problems.append("fewer than 3 classifiers")
    if not meta.get_all("Project-URL"):
        problems.append("no Project-URL")
    if meta.get("Description-Content-Type", "").split(";")[0] != "text/markdown":
        problems.append("long description is not Markdown")
    body = meta.get_payload() or ""
    if "hecktorseg demo" not in body:
        problems.append("README (with `hecktorseg demo`) is not the long description")
    if not any(f.endswith("hecktorseg/py.typed") for f in files):
        problems.append("py.typed is not in the wheel")
    if not any(f.endswith("hecktorseg/training/_data/paper_splits.json") for f in files):
        problems.append("the paper's fold lists (training/_data/paper_splits.json) are not in the wheel")
    if problems:
        session.error("wheel metadata: " + "; ".join(problems))
    session.log(
        f"metadata OK: {meta['Name']} {meta['Version']}, {len(meta.get_all('Classifier') or [])} classifiers"
    )


@nox.session
def build(session: nox.Session) -> None:
    """Build the sdist and wheel, check their metadata, install the wheel into an empty venv."""
    session.install("build>=1.0")
    tmp = Path(session.create_tmp())
    dist = tmp / "dist"
    if dist.exists():
        shutil.rmtree(dist)
    session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"expected one wheel and one sdist in {dist}, found {[p.name for p in dist.iterdir()]}")
    _check_metadata(session, wheels[0])

    venv = tmp / "clean-venv"
    if venv.exists():
        shutil.rmtree(venv)
    session.run(sys.executable, "-m", "venv", str(venv), external=True)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = str(bindir / "python")
    session.run(py, "-m", "pip", "install", "--quiet", *TORCH_SPEC.split(), external=True)
    session.run(py, "-m", "pip", "install", "--quiet", str(wheels[0]), external=True)
    session.run(str(bindir / "hecktorseg"), "--version", external=True)
    session.run(py, "-m", "hecktorseg", "--help", external=True, silent=True)
    session.run(
        py,
        "-c",
        "import hecktorseg, hecktorseg.io; print('import OK', hecktorseg.__version__)",
        external=True,
    )
    session.log(f"built: {wheels[0].name}, {sdists[0].name} in {dist}")
