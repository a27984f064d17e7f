"""Package-level guarantees: version, entry points, public API hygiene, layering, CLI help, typing marker."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import hecktorseg

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hecktorseg"

PUBLIC_PACKAGES = (
    "hecktorseg",
    "hecktorseg.errors",
    "hecktorseg.typing",
    "hecktorseg.reports",
    "hecktorseg.io",
    "hecktorseg.dicom",
    "hecktorseg.config",
    "hecktorseg.runtime",
    "hecktorseg.preprocessing",
    "hecktorseg.data",
    "hecktorseg.models",
    "hecktorseg.losses",
    "hecktorseg.training",
    "hecktorseg.inference",
    "hecktorseg.evaluation",
    "hecktorseg.review",
)

# Layer rank of each top-level part of the package; a module may import only parts of a lower
# rank, or its own part.  Equal ranks (models, losses) may not import each other.
LAYERS: dict[str, float] = {
    "errors": 0,
    "typing": 0,
    "reports": 0,
    "_version": 0,
    "_lazy": 0,
    "io": 1,
    "dicom": 1.5,  # DICOM in and out: writes datasets through io; inference exports with it
    "config": 2,
    "runtime": 2,
    "preprocessing": 3,
    "data": 4,
    "models": 5,
    "losses": 5,
    "training": 6,
    "inference": 7,
    "evaluation": 8,
    "review": 9,  # the review page: uses evaluation's metrics, colours and scores
    "demo": 10,
    "container": 10,  # the Grand Challenge image: uses inference (and data for its sample case)
    "cli": 11,
    "__main__": 12,
}
SUBCOMMANDS = (
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


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


# --------------------------------------------------------------------------- version & entry points


def test_version_is_consistent() -> None:
    from hecktorseg._version import __version__

    assert hecktorseg.__version__ == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([abrc.]+\d+)?(\.dev\d+)?(\+\S+)?", __version__)
    assert importlib.metadata.version("hecktorseg") == __version__


def test_python_m_hecktorseg_version() -> None:
    result = _run("-m", "hecktorseg", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"hecktorseg {hecktorseg.__version__}"


def test_console_script_is_declared() -> None:
    scripts = importlib.metadata.entry_points(group="console_scripts")
    (entry,) = [ep for ep in scripts if ep.name == "hecktorseg"]
    assert entry.value == "hecktorseg.cli:main"
    assert callable(entry.load())


def test_cli_version_in_process() -> None:
    from typer.testing import CliRunner

    from hecktorseg.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert hecktorseg.__version__ in result.output


def test_py_typed_ships() -> None:
    assert (SRC / "py.typed").is_file()
    import importlib.resources

    assert importlib.resources.files("hecktorseg").joinpath("py.typed").is_file()


# --------------------------------------------------------------------------- public API hygiene


def _defined_here(obj: object) -> bool:
    return (getattr(obj, "__module__", None) or "").startswith("hecktorseg")


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_public_names_exist_and_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__ and module.__doc__.strip(), f"{name} has no module docstring"
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    undocumented = []
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"
        obj = getattr(module, attr)
        documentable = isinstance(obj, ModuleType) or (
            (inspect.isclass(obj) or inspect.isfunction(obj)) and _defined_here(obj)
        )
        if documentable and not (obj.__doc__ or "").strip():
            undocumented.append(attr)
    assert not undocumented, f"{name}: public names without a docstring: {undocumented}"


def _public_members(cls: type) -> list[str]:
    """Public methods and properties defined by ``cls`` itself in hecktorseg code."""
    names = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if not inspect.isfunction(func) or not _defined_here(func):
            continue
        if func.__qualname__.split(".")[0] != cls.__name__:  # attrs-generated or copied from elsewhere
            continue
        names.append(attr)
    return names


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_public_methods_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    missing = []
    for attr in getattr(module, "__all__", ()):
        obj = getattr(module, attr)
        if not inspect.isclass(obj) or not _defined_here(obj):
            continue
        for member in _public_members(obj):
            value = vars(obj)[member]
            func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
            if not (func.__doc__ or "").strip():
                missing.append(f"{obj.__module__}.{obj.__qualname__}.{member}")
    assert not missing, "public methods without a docstring:\n  " + "\n  ".join(missing)


# --------------------------------------------------------------------------- layering


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports_in(source: str, module: str, *, is_package: bool) -> list[tuple[int, str, list[str]]]:
    """(line, absolute hecktorseg module, imported names) for every import in ``source``."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "hecktorseg"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "hecktorseg":
                found.append((node.lineno, target, [a.name for a in node.names]))
    return sorted(found)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    return _imports_in(
        path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py"
    )


def _targets(target: str, names: list[str]) -> list[str]:
    """The hecktorseg layers an import reaches (``from hecktorseg import io`` reaches ``io``)."""
    layer = _layer(target)
    if layer is not None:
        return [layer]
    # ``from hecktorseg import x``: a sub-package name, or a re-export of the bottom layer.
    return [n if n in LAYERS else "errors" for n in names] or ["errors"]


def _source_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_module_has_a_known_layer() -> None:
    unknown = sorted(
        {_layer(_module_name(p)) for p in _source_files()} - set(LAYERS) - {None}  # type: ignore[arg-type]
    )
    assert not unknown, f"modules outside the layer order {list(LAYERS)}: {unknown}"


def test_layering_rule() -> None:
    violations = []
    for path in _source_files():
        this = _module_name(path)
        own = _layer(this)
        if own is None:  # the root package re-exports the bottom layer and loads the rest lazily
            for line, target, names in _imports(path):
                bad = [t for t in _targets(target, names) if LAYERS[t] > 0]
                violations += [f"{path.relative_to(ROOT)}:{line} imports hecktorseg.{t}" for t in bad]
            continue
        for line, target, names in _imports(path):
            for layer in _targets(target, names):
                if layer == own:
                    continue
                if LAYERS[layer] >= LAYERS[own]:
                    violations.append(
                        f"{path.relative_to(ROOT)}:{line} ({own}) imports hecktorseg.{layer}, "
                        f"which is not below it"
                    )
    assert not violations, "layering violations:\n  " + "\n  ".join(violations)


def test_cli_and_demo_use_only_public_api() -> None:
    """The CLI (and the demo) reach the library only through public modules and names."""
    violations = []
    for path in _source_files():
        own = _layer(_module_name(path))
        if own not in ("cli", "demo", "__main__"):
            continue
        for line, target, names in _imports(path):
            layer = _layer(target)
            if layer in ("cli", own):
                continue
            private_module = any(part.startswith("_") for part in target.split(".")[1:] if part != "_version")
            private_names = [n for n in names if n.startswith("_") and n != "__version__"]
            if private_module or private_names:
                violations.append(f"{path.relative_to(ROOT)}:{line} imports {target} {private_names or ''}")
    assert not violations, "private imports from the CLI/demo:\n  " + "\n  ".join(violations)


def test_layer_check_sees_violations() -> None:
    """Self-test of the import parser on a hand-made module living at hecktorseg/io/_probe.py."""
    source = (
        "from hecktorseg.training import x\n"
        "def f():\n    from ..models import y\n"
        "import hecktorseg.errors\n"
        "from . import atomic\n"
        "from hecktorseg import preprocessing, __version__\n"
    )
    found = _imports_in(source, "hecktorseg.io._probe", is_package=False)
    assert [(line, target) for line, target, _ in found] == [
        (1, "hecktorseg.training"),
        (3, "hecktorseg.models"),
        (4, "hecktorseg.errors"),
        (5, "hecktorseg.io"),
        (6, "hecktorseg"),
    ]
    assert _targets("hecktorseg", found[-1][2]) == ["preprocessing", "errors"]
    assert _imports_in("from . import geometry\n", "hecktorseg.io", is_package=True)[0][1] == "hecktorseg.io"


# --------------------------------------------------------------------------- no private data paths


def test_nothing_points_at_the_development_reference_folder() -> None:
    needles = ("../" + "shared", "/work/" + "shared")
    offenders = []
    for folder in ("src", "docs", "examples", "benchmarks"):
        base = ROOT / folder
        if not base.exists():
            continue
        for path in base.rglob("*"):
            if not path.is_file() or "_build" in path.parts or path.suffix in {".png", ".pt", ".gz", ".pyc"}:
                continue
            text = path.read_text(encoding="utf-8", errors="ignore")
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in needles if n in text]
    for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", "pyproject.toml", "noxfile.py"):
        path = ROOT / name
        if path.exists():
            text = path.read_text(encoding="utf-8")
            offenders += [f"{name}: {n}" for n in needles if n in text]
    assert not offenders, offenders


# --------------------------------------------------------------------------- CLI help stays light

_HELP_PROBE = """
import json, sys
from typer.testing import CliRunner
from hecktorseg.cli import app
reports = {"import": {"code": 0, "output": "Usage", "torch": "torch" in sys.modules}}
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, args)
    reports[" ".join(args)] = {"code": result.exit_code, "output": result.output,
                               "torch": "torch" in sys.modules}
print(json.dumps(reports))
"""


@pytest.fixture(scope="module")
def help_reports() -> dict[str, dict[str, object]]:
    """``--help`` of the app and of every sub-command, all in one fresh interpreter."""
    all_args = [["--help"]] + [[command, "--help"] for command in SUBCOMMANDS]
    result = _run("-c", _HELP_PROBE, json.dumps(all_args))
    assert result.returncode == 0, result.stderr
    reports: dict[str, dict[str, object]] = json.loads(result.stdout.strip().splitlines()[-1])
    return reports


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_cli_help_works_without_importing_torch(
    command: str | None, help_reports: dict[str, dict[str, object]]
) -> None:
    key = "--help" if command is None else f"{command} --help"
    assert not help_reports["import"]["torch"], "importing hecktorseg.cli imports torch"
    report = help_reports[key]
    assert report["code"] == 0, report["output"]
    assert "Usage" in str(report["output"])
    if report["torch"]:
        first = next(k for k, r in help_reports.items() if r["torch"])
        pytest.fail(f"`hecktorseg {key}` ran with torch imported (first imported by `hecktorseg {first}`)")


def test_every_subcommand_is_registered() -> None:
    import typer.main

    from hecktorseg.cli import app

    group = typer.main.get_command(app)
    names = set(getattr(group, "commands", {}))
    assert set(SUBCOMMANDS) <= names, f"missing sub-commands: {sorted(set(SUBCOMMANDS) - names)}"


# --------------------------------------------------------------------------- tooling contract


def test_noxfile_declares_the_documented_sessions() -> None:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    sessions = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any("session" in ast.unparse(d) for d in node.decorator_list)
    }
    assert {"tests", "lint", "typecheck", "docs", "demo", "bench", "build"} <= sessions


def test_ci_script_runs_the_readme_test_command() -> None:
    ci = ROOT / ".ci" / "run"
    assert ci.is_file() and os.access(ci, os.X_OK), ".ci/run must exist and be executable"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- test-command -->\s*```(?:bash|console|sh)?\n(.*?)```", readme, re.S)
    assert match, "README.md must mark its test command with <!-- test-command -->"
    command = match.group(1).strip().splitlines()[-1].split("&&")[-1].strip()
    assert command, "the README's test command is empty"
    ci_lines = [line.strip() for line in ci.read_text(encoding="utf-8").splitlines()]
    assert command in ci_lines, f".ci/run must run the README's test command {command!r} as is"


def test_paper_fold_lists_ship_as_package_data() -> None:
    import importlib.resources
    import json

    resource = importlib.resources.files("hecktorseg.training").joinpath("_data/paper_splits.json")
    data = json.loads(resource.read_text(encoding="utf-8"))
    assert sorted(data) == sorted(
        [f"train_val_split_{k}" for k in range(4)] + [f"train_val_new_split_{k}" for k in range(4)]
    )
    # hatch's wheel target packages the whole src/hecktorseg folder, data files included
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'packages = ["src/hecktorseg"]' in pyproject


def test_docs_directives_start_their_line() -> None:
    # a directive glued to the text before it (``====.. list-table::``) renders as plain text
    # without any Sphinx warning: docs/paper.rst lost its tables that way once
    glued = [
        f"{page.name}:{n}: {line.strip()}"
        for page in sorted((ROOT / "docs").glob("*.rst"))
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\S\.\. [a-z-]+::", line) and not line.lstrip().startswith("..")
    ]
    assert not glued, glued
    paper = (ROOT / "docs" / "paper.rst").read_text(encoding="utf-8")
    # issue 11: the published targets, the paper-vs-default table, and the 8-model ensemble shown
    assert "0.759" in paper and ".. list-table::" in paper and "--preset paper --all-folds" in paper
    assert "--model 'runs/fold_*/best.pt'" in paper


@pytest.mark.parametrize("name", PUBLIC_PACKAGES)
def test_one_name_for_replacing_outputs(name: str) -> None:
    """The idea "replace what is there" is called ``force`` throughout the API, never ``overwrite``."""
    module = importlib.import_module(name)
    offenders = []
    for attr in getattr(module, "__all__", ()):
        obj = getattr(module, attr)
        if isinstance(obj, ModuleType) or not callable(obj):
            continue
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        if "overwrite" in params:
            offenders.append(attr)
    assert not offenders, f"{name}: {offenders} take `overwrite`; call it `force`"


@pytest.mark.parametrize("name", ["hecktorseg.data", "hecktorseg.training"])
def test_lazy_exports_come_from_one_list(name: str) -> None:
    """``__all__``, the lazy table and the type checkers' imports all say the same (from ``_EXPORTS``)."""
    module = importlib.import_module(name)
    exports: dict[str, str] = module._EXPORTS
    assert module.__all__ == list(exports)
    assert dir(module) == sorted(exports)
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    imported: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{name}."):
            for alias in node.names:
                assert alias.asname == alias.name, (
                    f"{name}: import {alias.name} as itself (explicit re-export)"
                )
                imported[alias.name] = (node.module or "")[len(name) + 1 :]
    assert imported == exports, f"{name}: the imports and _EXPORTS differ"
    for attr, sub in exports.items():
        assert getattr(module, attr) is getattr(importlib.import_module(f"{name}.{sub}"), attr)


INTERNAL = {
    "hecktorseg.io": (
        "set_io_threads",
        "is_stale_temp",
        "output_file_error",
        "check_input_file",
        "output_lock",
    ),
    "hecktorseg.preprocessing": ("record_path", "sha256_file", "PreprocessReport"),
    "hecktorseg.training": ("prepare_fold_dir", "resolve_amp", "autocast_context", "RESULT_FILES"),
    "hecktorseg.models": ("load_any_checkpoint",),
    "hecktorseg.inference": ("PredictReport",),
}


@pytest.mark.parametrize("name", sorted(INTERNAL))
def test_internal_helpers_are_not_exported(name: str) -> None:
    exported = set(importlib.import_module(name).__all__)
    assert not exported & set(INTERNAL[name])


def test_each_public_object_is_exported_once() -> None:
    """The API reference lists each class and function once: no two packages export the same object."""
    owners: dict[int, list[str]] = {}
    for name in PUBLIC_PACKAGES[1:]:  # the top level re-exports the errors and BatchReport on purpose
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                owners.setdefault(id(obj), []).append(f"{name}.{attr}")
    twice = [names for names in owners.values() if len(names) > 1]
    assert not twice, f"exported by more than one package: {twice}"


def test_evaluate_function_is_not_shadowed_by_its_module() -> None:
    """``evaluation/evaluate.py`` shares its name with the function the package exports."""
    import hecktorseg.evaluation
    import hecktorseg.evaluation.visualize  # imports the module hecktorseg.evaluation.evaluate

    module = importlib.import_module("hecktorseg.evaluation.evaluate")
    assert inspect.isfunction(hecktorseg.evaluation.evaluate)
    assert hecktorseg.evaluation.evaluate is module.evaluate
