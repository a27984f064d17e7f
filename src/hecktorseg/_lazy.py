"""Lazy re-exports for package ``__init__`` modules whose names pull in torch."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    names: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    public: Sequence[str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build a module's ``__getattr__`` and ``__dir__`` that import sub-modules on first use.

    Parameters
    ----------
    package
        The package's ``__name__``.
    names
        Public name → sub-module (relative to ``package``) that defines it: the package's
        one list of exports, from which its ``__all__`` is built too (``list(names)``).
        Names the package imports eagerly may be listed: they are already in ``namespace``,
        so ``__getattr__`` is never asked for them.
    namespace
        The package's ``globals()``: a loaded name is cached there, so the
        import happens once.
    public
        The names ``dir()`` lists (default: those of ``names``).
    """

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    listed = sorted(names if public is None else public)

    def dir_() -> list[str]:
        return list(listed)

    return getattr_, dir_
