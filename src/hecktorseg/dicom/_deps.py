"""The optional DICOM dependencies: one clear error, with the install command, when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from hecktorseg.errors import ConfigError

INSTALL_HINT = 'install it with: pip install "hecktorseg[dicom]"'
"""How to get the ``dicom`` extra (pydicom, highdicom)."""


def require(module: str) -> ModuleType:
    """Import ``module`` (``pydicom``, ``highdicom``), or raise a one-line error naming the extra.

    Raises
    ------
    ConfigError
        The module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"DICOM support needs the Python package {module!r} ({exc})", hint=INSTALL_HINT
        ) from None
