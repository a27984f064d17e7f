"""Writing the review page: ``index.html`` (the cohort table inline), its script and style, one data file per case.

Everything the page loads is a relative path beside it (``assets/``, ``cases/``),
so it opens from ``file://`` with no server and no network. A case's data is a
``cases/case-NNNN.js`` script calling ``hsReview.caseLoaded({...})``: browsers block
``fetch()`` of ``file://`` addresses but run ``<script>`` files, and the page adds that
tag only when the case is opened, so a cohort of hundreds opens at once.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hecktorseg._version import __version__
from hecktorseg.evaluation.visualize import LABEL_COLOURS, LABEL_NAMES
from hecktorseg.io import atomic_write_text, ensure_output_dir
from hecktorseg.review.case_data import CT_CODE_HU
from hecktorseg.review.flags import ERROR_FLAG, REVIEW_FLAGS, ReviewSettings

if TYPE_CHECKING:
    from hecktorseg.review.review import ReviewRow

__all__ = ["ASSETS", "CASES_DIR", "write_case_file", "write_page"]

CASES_DIR = "cases"
"""Sub-folder of the review holding each case's viewer data."""

ASSETS = ("review.js", "review.css")
"""The page's script and style, copied from the package into ``assets/``."""

_CASE_FILE = re.compile(r"case-\d{4,}\.js")

# (key, title, kind, decimals): the columns every review has; the metrics follow, then the error.
_BASE_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    ("patient", "patient", "text", 0),
    ("centre", "centre", "text", 0),
    ("flags", "flags", "flags", 0),
    ("gtvp_ml", "GTVp ml", "number", 2),
    ("gtvn_ml", "GTVn ml", "number", 2),
    ("gtvn_components", "GTVn components", "number", 0),
    ("suvmax_gtvp", "SUVmax GTVp", "number", 2),
)


def _json(value: Any) -> Any:
    """Strict-JSON form: NaN and infinities become ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def _script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(_json(value), allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_case_file(out: Path, number: int, payload: dict[str, Any]) -> str:
    """Write ``cases/case-NNNN.js`` (atomically) and return its path relative to the page."""
    ensure_output_dir(out / CASES_DIR)
    relative = f"{CASES_DIR}/case-{number + 1:04d}.js"
    atomic_write_text(out / relative, f"hsReview.caseLoaded({_script_json(payload)});\n")
    return relative


def _row(row: ReviewRow) -> dict[str, Any]:
    stats = row.stats
    values: dict[str, Any] = {"patient": row.patient_id, "centre": row.centre, "flags": list(row.flags)}
    if stats is not None:
        values |= {
            "gtvp_ml": stats.gtvp_ml,
            "gtvn_ml": stats.gtvn_ml,
            "gtvn_components": stats.gtvn_components,
            "suvmax_gtvp": stats.suvmax_gtvp,
            "uncertain_ml": stats.uncertain_ml,
        }
    return (
        values | {f"m:{k}": v for k, v in row.metrics.items()} | {"error": row.error, "file": row.data_file}
    )


def _columns(rows: Sequence[ReviewRow]) -> list[dict[str, Any]]:
    columns = [{"key": k, "title": t, "kind": kind, "digits": d} for k, t, kind, d in _BASE_COLUMNS]
    if any(r.stats is not None and r.stats.uncertain_ml is not None for r in rows):
        columns.append({"key": "uncertain_ml", "title": "uncertain ml", "kind": "number", "digits": 2})
    seen: dict[str, str] = {}
    for row in rows:
        for key, value in row.metrics.items():
            kind = "number" if isinstance(value, float) else "text"
            seen[key] = "text" if seen.get(key) == "text" else kind
    columns += [{"key": f"m:{k}", "title": k, "kind": kind, "digits": 3} for k, kind in seen.items()]
    if any(r.error is not None for r in rows):
        columns.append({"key": "error", "title": "error", "kind": "text", "digits": 0})
    return columns


def _remove_stale(out: Path, keep: set[str]) -> None:
    folder = out / CASES_DIR
    if folder.is_dir():
        for path in folder.iterdir():
            if _CASE_FILE.fullmatch(path.name) and f"{CASES_DIR}/{path.name}" not in keep:
                path.unlink()


def write_page(out: Path, rows: Sequence[ReviewRow], settings: ReviewSettings) -> Path:
    """Write ``index.html`` and ``assets/`` (last, atomically) and remove case files of an earlier review."""
    cohort = {
        "version": __version__,
        "columns": _columns(rows),
        "rows": [_row(r) for r in rows],
        "flags": [{"name": f.name, "description": f.description} for f in REVIEW_FLAGS]
        + [{"name": ERROR_FLAG, "description": "the case could not be reviewed (see the error column)"}],
        "ctCode": {"code": [c for c, _ in CT_CODE_HU], "hu": [h for _, h in CT_CODE_HU]},
        "labels": [{"value": v, "name": LABEL_NAMES[v], "colour": c} for v, c in LABEL_COLOURS.items()],
        "settings": {"min_component_ml": settings.min_component_ml},
    }
    package = resources.files("hecktorseg.review") / "assets"
    for name in ASSETS:
        atomic_write_text(out / "assets" / name, (package / name).read_text(encoding="utf-8"))
    template = (package / "review.html").read_text(encoding="utf-8")
    html = template.replace("__COHORT__", _script_json(cohort)).replace("__VERSION__", __version__)
    index = out / "index.html"
    atomic_write_text(index, html)
    _remove_stale(out, {r.data_file for r in rows if r.data_file is not None})
    return index
