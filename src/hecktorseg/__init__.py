"""hecktorseg: head-and-neck primary tumour and lymph node (GTVt/GTVp, GTVn) segmentation in combined PET/CT.

A typed re-implementation of the HECKTOR 2020 winning solution (Iantsen, Visvikis
and Hatt, SE-normalisation U-Net) as a library and command-line tool.

Sub-packages, each importing only those listed before it:

- :mod:`hecktorseg.io` — images, dataset layouts, box tables;
- :mod:`hecktorseg.config` — configuration records, YAML and presets;
- :mod:`hecktorseg.preprocessing` — reference grid, resampling, normalisation, inverse mapping;
- :mod:`hecktorseg.data` — datasets, augmentation, synthetic phantoms;
- :mod:`hecktorseg.models`, :mod:`hecktorseg.losses`;
- :mod:`hecktorseg.training`;
- :mod:`hecktorseg.inference`;
- :mod:`hecktorseg.evaluation`;
- :mod:`hecktorseg.demo` (the end-to-end demo) and :mod:`hecktorseg.container` (the Grand
  Challenge image), side by side.

Shared by all of them: :mod:`hecktorseg.runtime` (device, precision, threads, the cache
folder), :mod:`hecktorseg.errors` (exceptions), :mod:`hecktorseg.reports`
(:class:`~hecktorseg.reports.BatchReport`, what a batch run did) and :mod:`hecktorseg.typing`.

Importing :mod:`hecktorseg` is cheap: sub-packages load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from hecktorseg._version import __version__
from hecktorseg.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    GeometryError,
    HecktorsegError,
    LayoutError,
)
from hecktorseg.reports import BatchReport

__all__ = [
    "BatchReport",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GeometryError",
    "HecktorsegError",
    "LayoutError",
    "__version__",
    "config",
    "data",
    "evaluation",
    "inference",
    "io",
    "losses",
    "models",
    "preprocessing",
    "training",
]

_SUBMODULES = {
    "config",
    "data",
    "evaluation",
    "inference",
    "io",
    "losses",
    "models",
    "preprocessing",
    "training",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"hecktorseg.{name}")
    raise AttributeError(f"module 'hecktorseg' has no attribute {name!r}")
