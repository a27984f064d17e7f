"""Sphinx configuration for the hecktorseg documentation.

Build with ``nox -s docs`` (or ``sphinx-build -W --keep-going -b html docs docs/_build/html``).

* The API reference pages are generated at build time (``docs/api/generated/``) from each
  public package's ``__all__``, so they always match the code: one page per package, with a
  section per public submodule (its docstring and the names the package does not export).
* ``nitpicky`` is on: every cross-reference must resolve, so a dead one fails ``-W``. The
  short ``nitpick_ignore_regex`` below covers other libraries' types only.
* The CLI reference is rendered from the Typer app by the local ``hecktorseg_cli`` extension.
* Figures of the preprocessing page are drawn at build time from a synthetic phantom
  (``docs/_scripts/preprocessing_figures.py``, into ``docs/_build/figures``); if that fails the page is built without them.
* Links to the Python, NumPy, PyTorch and SimpleITK documentation (intersphinx) need network
  access; they are switched on with ``HECKTORSEG_DOCS_INTERSPHINX=1`` so that offline builds
  with ``-W`` do not fail on unreachable inventories.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import logging
import os
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE / "_scripts"))
os.environ.setdefault("MPLBACKEND", "Agg")

from sphinx import addnodes  # noqa: E402
from sphinx.pycode import ModuleAnalyzer  # noqa: E402
from sphinx.util import logging as sphinx_logging  # noqa: E402

import hecktorseg  # noqa: E402

logger = logging.getLogger("hecktorseg.docs")
sphinx_logger = sphinx_logging.getLogger("hecktorseg.docs")

# -- Project -------------------------------------------------------------------------------------

project = "hecktorseg"
author = "The hecktorseg developers"
copyright = "2026, The hecktorseg developers"
release = hecktorseg.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "hecktorseg_cli",
]
exclude_patterns = ["_build", "_scripts", "_ext", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
root_doc = "index"
default_role = "code"
smartquotes = False  # keep `--flag` as typed (no en dashes) in help texts and prose
# Every cross-reference must resolve (a dead one would render as plain code).
nitpicky = True
nitpick_ignore_regex = [
    # Other libraries' types in signatures and docstrings: their inventories (intersphinx) need
    # the network, so the default build cannot link them.
    ("py:.*", r"(torch|numpy|SimpleITK|pydicom|scipy|attrs)\..+"),
    # The standard library's, for the same reason (``Path``: an annotation autodoc could not
    # evaluate, from an import only made for type checking).
    ("py:.*", r"(os|pathlib|collections\.abc|datetime|enum|contextlib)\..+|Path"),
    # Type variables of generic signatures (``T``, ``M``): placeholders, not documented objects.
    ("py:class", r"hecktorseg(\.\w+)+\.[A-Z]"),
]

# No "members" here: a default ``members: True`` overrides the explicit ``:members: a, b`` of
# the generated submodule sections (sphinx-doc/sphinx#9709), which then document every name
# twice; the generated pages say ``:members:`` themselves.
autodoc_default_options = {
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
autodoc_mock_imports: list[str] = []

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = True
napoleon_use_rtype = False
# Attributes as attribute entries (targets for :attr: references), not a "Variables" list.
napoleon_use_ivar = False

if os.environ.get("HECKTORSEG_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "SimpleITK": ("https://simpleitk.readthedocs.io/en/master", None),
    }
    intersphinx_timeout = 20

# -- HTML ----------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"hecktorseg {release}"
# No script from a CDN: the pages hold no maths (formulas are plain text), so Sphinx loads no
# MathJax; hecktorseg.css lets wide tables and code scroll and keeps flags unbroken.
html_static_path = ["_static"]
html_css_files = ["hecktorseg.css"]
html_theme_options = {
    "source_repository": "https://github.com/hecktorseg/hecktorseg",
    "source_branch": "main",
    "source_directory": "docs/",
}

# -- Generated API pages -------------------------------------------------------------------------

API_PACKAGES = (
    ("hecktorseg.io", "Images, dataset layouts and box tables"),
    ("hecktorseg.dicom", "DICOM PET/CT in (SUV, RTSTRUCT labels), RTSTRUCT and DICOM-SEG out"),
    ("hecktorseg.config", "Configuration machinery"),
    ("hecktorseg.runtime", "Device, precision, autocast, threads and the cache folder"),
    ("hecktorseg.preprocessing", "Reference grid, resampling, normalisation, inverse mapping"),
    ("hecktorseg.data", "Datasets, augmentation and synthetic phantoms"),
    ("hecktorseg.models", "Networks, registry and checkpoints"),
    ("hecktorseg.losses", "Segmentation losses"),
    ("hecktorseg.training", "Training loop, splits and configuration"),
    ("hecktorseg.inference", "Prediction, ensembling and test-time augmentation"),
    ("hecktorseg.evaluation", "Metrics, challenge scoring and pictures"),
    ("hecktorseg.review", "One offline page to review every prediction"),
    ("hecktorseg.demo", "The end-to-end demo and its report"),
    ("hecktorseg.container", "Grand Challenge submission container (HECKTOR 2025/2026)"),
    ("hecktorseg.errors", "Exceptions"),
    ("hecktorseg.reports", "Batch run reports"),
    ("hecktorseg.typing", "Type aliases"),
)


def _is_constant(obj: object) -> bool:
    """Whether autodoc would need a doc comment to document ``obj`` (a value or a type alias)."""
    return not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj))


def _assigned(module: ModuleType) -> tuple[set[str], dict[str, list[str]]]:
    """Names a module assigns at its top level (not imports) and their doc comments.

    A doc comment is a ``#:`` comment before the assignment or a string right after it.
    """
    return _assigned_in(module.__name__, module.__file__ or "")


@functools.cache
def _assigned_in(name: str, path: str) -> tuple[set[str], dict[str, list[str]]]:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    analyzer = ModuleAnalyzer.for_module(name)
    analyzer.analyze()
    docs = {attr: list(lines) for (ns, attr), lines in analyzer.attr_docs.items() if ns == ""}
    return names, docs


def _submodules(package: ModuleType, *, private: bool) -> list[ModuleType]:
    found = []
    for info in pkgutil.iter_modules(getattr(package, "__path__", [])):
        if info.name.startswith("_") and not private:
            continue
        name = f"{package.__name__}.{info.name}"
        try:
            found.append(importlib.import_module(name))
        except Exception as exc:  # a broken (or optional-dependency) module is reported by the tests
            logger.info("docs: skipping %s (%s)", name, exc)
    return found


# Documented name of each declared constant → the module that assigns it (where its doc
# comment's references are meant), for ``_resolve_as_python``.
_CONSTANT_HOMES: dict[str, str] = {}


def _declared_constant(where: ModuleType, name: str, search: list[ModuleType]) -> list[str]:
    """A ``py:data`` entry for a constant that ``where`` exports but another module assigns.

    autodoc looks for a constant's doc comment (``#:`` or a string after the assignment) in
    the module it documents, where an imported constant has none, so it leaves it out. The
    entry carries the comment of the module that assigns it (searched in ``search``); a
    constant without one is a warning (an error with ``-W``).
    """
    value = getattr(where, name)
    for module in search:
        assigned, docs = _assigned(module)
        if name in assigned and getattr(module, name, None) is value:
            break
    else:
        sphinx_logger.warning("%s.%s: no module of the package assigns it", where.__name__, name)
        return []
    doc = docs.get(name, [])
    if not doc:
        sphinx_logger.warning("%s.%s (from %s) has no doc comment", where.__name__, name, module.__name__)
    _CONSTANT_HOMES[f"{where.__name__}.{name}"] = module.__name__
    lines = [f".. py:data:: {name}", f"   :module: {where.__name__}"]
    if not module.__name__.rsplit(".", 1)[-1].startswith("_"):
        lines.append(f"   :canonical: {module.__name__}.{name}")
    shown = repr(value)
    if len(shown) <= 70 and "\n" not in shown and not any(":meta hide-value:" in line for line in doc):
        lines.append(f"   :value: {shown}")
    body = [line for line in doc if not line.strip().startswith(":meta ")]
    return [*lines, "", *(f"   {line}" if line else "" for line in body), ""]


def _package_section(package: ModuleType) -> list[str]:
    """The package's own entry: autodoc for its ``__all__``, then the constants it imports."""
    lines = [f".. automodule:: {package.__name__}"]
    exported = getattr(package, "__all__", ())
    lines += ["   :members:", ""] if exported else [""]
    own, _ = _assigned(package)
    imported = [n for n in exported if _is_constant(getattr(package, n)) and n not in own]
    if imported:
        lines += [".. rubric:: Constants and type aliases", ""]
        for name in imported:
            lines += _declared_constant(package, name, _submodules(package, private=True))
    return lines


def _exported_by_another(module: ModuleType, name: str, value: object) -> bool:
    """Whether ``module`` re-exports ``name`` from another public module, where it is documented."""
    home = getattr(value, "__module__", None) if not _is_constant(value) else None
    others = [home] if home and home != module.__name__ else []
    others += [p for p, _ in API_PACKAGES if not module.__name__.startswith(f"{p}.")]
    for other in others:
        exporter = sys.modules.get(other)
        if (
            exporter is not None
            and name in getattr(exporter, "__all__", ())
            and getattr(exporter, name) is value
        ):
            return not other.rsplit(".", 1)[-1].startswith("_")
    return False


def _submodule_section(package: ModuleType, module: ModuleType, siblings: list[ModuleType]) -> list[str]:
    """A public submodule's section: its docstring and the names of its ``__all__`` the package does not export.

    Every public submodule gets one (a target for ``:mod:`` references), with only those names,
    so that no object is documented twice (which would make cross-references ambiguous).
    """
    heading = f"``{module.__name__}``"
    lines = [heading, "-" * len(heading), "", f".. automodule:: {module.__name__}"]
    exported = {id(getattr(package, n, None)) for n in getattr(package, "__all__", ())}
    assigned, docs = _assigned(module)
    members, imported = [], []
    for name in getattr(module, "__all__", ()):
        value = getattr(module, name, None)
        if id(value) in exported or _exported_by_another(module, name, value):
            continue
        if not _is_constant(value):
            if getattr(value, "__module__", None) != module.__name__:
                sphinx_logger.warning(
                    "%s.%s is documented nowhere (defined elsewhere)", module.__name__, name
                )
            elif not (value.__doc__ or "").strip():
                sphinx_logger.warning("%s.%s has no docstring", module.__name__, name)
            members.append(name)
        elif name in assigned:
            if not docs.get(name):
                sphinx_logger.warning("%s.%s has no doc comment", module.__name__, name)
            members.append(name)
        else:
            imported.append(name)
    if members:
        lines.append(f"   :members: {', '.join(members)}")
    # A module named like an object the package exports (the module and the function
    # ``hecktorseg.evaluation.evaluate``) would be a second target of the same name.
    if getattr(package, module.__name__.rsplit(".", 1)[-1], module) is not module:
        lines.append("   :no-index:")
    lines.append("")
    for name in imported:
        lines += _declared_constant(module, name, siblings)
    return lines


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate_api_pages(app: object = None) -> None:
    """Write one reST page per public package into ``docs/api/generated``."""
    out = HERE / "api" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    for name, title in API_PACKAGES:
        package = importlib.import_module(name)
        heading = f"``{name}`` — {title}"
        lines = [heading, "=" * len(heading), "", *_package_section(package)]
        siblings = _submodules(package, private=True)
        for module in siblings:
            if not module.__name__.rsplit(".", 1)[-1].startswith("_"):
                lines += _submodule_section(package, module, siblings)
        _write_if_changed(out / f"{name}.rst", "\n".join(lines))


# -- Docstring and reference helpers -------------------------------------------------------------


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show the first public ancestor instead of a private base class (``_SegmentationLoss``)."""
    for k, base in enumerate(bases):
        while base.__name__.startswith("_") and base.__bases__:
            base = base.__bases__[0]
        bases[k] = base


def _split_attribute_names(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Give each name of a combined NumPy ``Attributes`` entry (``ct, pet : Path``) its own entry.

    napoleon does so for ``Parameters`` but would make one attribute named ``ct, pet``. Runs
    before napoleon, on the plain docstring (each entry repeats the shared description).
    """
    out: list[str] = []
    in_attributes = False
    i = 0
    while i < len(lines):
        line = lines[i]
        header = i + 1 < len(lines) and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}
        if header and line and not line[0].isspace():
            in_attributes = line.strip() == "Attributes"
        elif in_attributes and line and not line[0].isspace() and ", " in line.partition(" : ")[0]:
            names, sep, kind = line.partition(" : ")
            end = i + 1
            while end < len(lines) and (not lines[end] or lines[end][0].isspace()):
                end += 1
            for each in names.split(", "):
                out += [f"{each.strip()}{sep}{kind}", *lines[i + 1 : end]]
            i = end
            continue
        out.append(line)
        i += 1
    lines[:] = out


def _documented_name(obj: object, owner: str, name: str) -> str | None:
    """Where ``obj`` (called ``name`` in module ``owner``) is documented: the outermost module exporting it."""
    if inspect.isclass(obj) or inspect.isroutine(obj):
        owner, name = getattr(obj, "__module__", owner), getattr(obj, "__name__", name)
    found = None
    module = owner
    while module.startswith("hecktorseg."):
        exporter = sys.modules.get(module)
        if name in getattr(exporter, "__all__", ()) and getattr(exporter, name, None) is obj:
            found = f"{module}.{name}"
        module = module.rsplit(".", 1)[0]
    return found


def _resolve_as_python(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a reference the way Python would look the name up where the docstring is.

    Each object is documented once, under the package that exports it (``hecktorseg.io.Case``),
    but a docstring names things as its own module sees them: a sibling that the package does
    not export (``METRICS_COLUMNS`` in ``hecktorseg.training.history``), a name it imports
    (``Predictor``), or a dotted path through the defining module
    (``hecktorseg.evaluation.detection.aggregated_f1``). autodoc gives classes their defining
    module's name as a second target (``:canonical:``), not functions or values: this looks the
    name up in the docstring's module and links to the object only where it is documented under
    the very same object.
    """
    if node.get("refdomain") != "py" or node.get("reftype") == "mod":
        return None
    target = node["reftarget"]
    if target.startswith("hecktorseg."):
        candidates = [target]
    else:
        scopes = [node.get("py:module") or ""]
        parent = node.parent
        while parent is not None and not isinstance(parent, addnodes.desc):
            parent = parent.parent
        signature = parent.children[0] if parent is not None and parent.children else None
        if isinstance(signature, addnodes.desc_signature) and signature.get("module"):
            head = signature.get("fullname", "").split(".")[0]
            top = getattr(sys.modules.get(signature["module"]), head, None)
            home = _CONSTANT_HOMES.get(f"{signature['module']}.{head}")
            scopes.append(home or getattr(top, "__module__", "") or "")  # the module whose docstring it is
        candidates = [f"{scope}.{target}" for scope in scopes if scope.startswith("hecktorseg")]
    for full in candidates:
        parts = full.split(".")
        owner = next((k for k in range(len(parts) - 1, 0, -1) if ".".join(parts[:k]) in sys.modules), 0)
        module = sys.modules.get(".".join(parts[:owner]))
        if module is None or not hasattr(module, parts[owner]):
            continue
        name = _documented_name(getattr(module, parts[owner]), module.__name__, parts[owner])
        if name is not None:
            new_target = ".".join([name, *parts[owner + 1 :]])
            found = env.get_domain("py").resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], new_target, node, contnode
            )
            if found is not None:
                return found
    return None


def setup(app: Any) -> None:
    app.connect("builder-inited", generate_api_pages)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-docstring", _split_attribute_names, priority=400)  # napoleon: 500
    app.connect("missing-reference", _resolve_as_python)


# -- Build-time figures --------------------------------------------------------------------------


def _figures() -> bool:
    try:
        import preprocessing_figures

        preprocessing_figures.main(HERE / "_build" / "figures")
    except Exception as exc:  # the page is built without pictures rather than failing
        logger.warning("docs: preprocessing figures skipped: %s", exc)
        return False
    return True


if os.environ.get("HECKTORSEG_DOCS_FIGURES", "1") == "1" and _figures():
    tags.add("figures")  # type: ignore[name-defined]  # noqa: F821 - injected by Sphinx
