"""Sphinx configuration for the hecktorseg documentation.

Build with ``nox -s docs`` (or ``sphinx-build -W --keep-going -b html docs docs/_build/html``).

* The API reference pages are generated at build time (``docs/api/generated/``) from each
  public package's ``__all__``, so they always match the code.
* The CLI reference is rendered from the Typer app by the local ``hecktorseg_cli`` extension.
* Figures of the preprocessing page are drawn at build time from a synthetic phantom
  (``docs/_scripts/preprocessing_figures.py``, into ``docs/_build/figures``); if that fails the page is built without them.
* Links to the Python, NumPy, PyTorch and SimpleITK documentation (intersphinx) need network
  access; they are switched on with ``HECKTORSEG_DOCS_INTERSPHINX=1`` so that offline builds
  with ``-W`` do not fail on unreachable inventories.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE / "_scripts"))
os.environ.setdefault("MPLBACKEND", "Agg")

import hecktorseg  # noqa: E402

logger = logging.getLogger("hecktorseg.docs")

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
# Every cross-reference should resolve (a dead one renders as plain code). `nitpicky = True`
# still reports 165 unresolved references (package constants that autodoc leaves out because
# their docstrings live in the sub-modules, private type variables, napoleon "Returns" names,
# references to private modules): off until those are fixed (issue 23, item 9). The ignore list
# below is what remains for names outside the package once they are.
nitpicky = False
# A class a package re-exports is documented once, with autodoc's ``:canonical:`` name of its
# defining module as a second target of the same object; a short annotation (``RunInfo``) then
# finds both. They are one object, so that ambiguity is not worth a warning.
suppress_warnings = ["ref.python"]
nitpick_ignore_regex = [
    ("py:.*", r"(torch|np|numpy|sitk|SimpleITK|attrs|typer|yaml|pathlib|os|collections|typing|abc)(\..*)?"),
    (
        "py:.*",
        r"(Path|PathLike|Sequence|Mapping|Iterable|Iterator|Callable|Any|Literal|TypeVar|Enum|IntEnum)",
    ),
    ("py:.*", r"(optional|array-like|callable|default|of)"),
]

autodoc_default_options = {
    "members": True,
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
napoleon_use_ivar = True

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


def _public_submodules(package: ModuleType) -> list[tuple[str, list[str]]]:
    """Public submodules with an ``__all__`` whose classes/functions the package does not re-export.

    Each such module gets its own section listing only those names, so that no object is
    documented twice (which would make cross-references ambiguous).
    """
    found: list[tuple[str, list[str]]] = []
    if not hasattr(package, "__path__"):
        return found
    exported = {id(getattr(package, n, None)) for n in getattr(package, "__all__", ())}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        name = f"{package.__name__}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a broken module is reported by the tests, not the docs
            logger.info("docs: skipping %s (%s)", name, exc)
            continue
        names = [
            n
            for n in getattr(module, "__all__", ())
            if id(getattr(module, n, None)) not in exported
            and getattr(getattr(module, n, None), "__module__", None) == name  # defined there, not constants
        ]
        if names:
            found.append((name, names))
    return found


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate_api_pages() -> None:
    """Write one reST page per public package into ``docs/api/generated``."""
    out = HERE / "api" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    for name, title in API_PACKAGES:
        package = importlib.import_module(name)
        heading = f"``{name}`` — {title}"
        lines = [heading, "=" * len(heading), "", f".. automodule:: {name}", ""]
        if not getattr(package, "__all__", None):
            lines += ["   :no-members:", ""]
        for sub, names in _public_submodules(package):
            sub_heading = f"``{sub}``"
            lines += [
                sub_heading,
                "-" * len(sub_heading),
                "",
                f".. automodule:: {sub}",
                f"   :members: {', '.join(names)}",
                "",
            ]
        _write_if_changed(out / f"{name}.rst", "\n".join(lines))


generate_api_pages()

# -- Private base classes ------------------------------------------------------------------------


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show the first public ancestor instead of a private base class (``_SegmentationLoss``)."""
    for k, base in enumerate(bases):
        while base.__name__.startswith("_") and base.__bases__:
            base = base.__bases__[0]
        bases[k] = base


def setup(app: object) -> None:
    app.connect("autodoc-process-bases", _public_bases)  # type: ignore[attr-defined]


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
