"""Checks before a preprocessing run: grid sides the networks can train on
(:func:`check_trainable_size`) and label maps missing from a labelled dataset
(:func:`missing_labels`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hecktorseg.errors import ConfigError, DataError, HecktorsegError
from hecktorseg.io import (
    IMAGE_SUFFIXES,
    Case,
    Layout,
    layout_paths,
)
from hecktorseg.io.layout_specs import split_image_suffix
from hecktorseg.preprocessing.config import PreprocessConfig

__all__ = ["GRID_MULTIPLE", "check_trainable_size", "missing_labels"]


GRID_MULTIPLE = 16
"""Every side of a preprocessed grid must be a multiple of this: the U-Nets halve it four times."""


def check_trainable_size(config: PreprocessConfig) -> None:
    """Refuse a reference grid whose sides are not multiples of :data:`GRID_MULTIPLE`.

    The networks pool four times, so a preprocessed dataset with other sides cannot be
    trained on (inference pads in-memory grids itself and needs no such rule).

    Raises
    ------
    ConfigError
        A side of ``config.size`` is not a multiple of 16.
    """
    size = [int(v) for v in config.size]
    if any(v % GRID_MULTIPLE for v in size):
        nearest = [max(GRID_MULTIPLE, round(v / GRID_MULTIPLE) * GRID_MULTIPLE) for v in size]
        raise ConfigError(
            f"size: every side must be a multiple of {GRID_MULTIPLE} (the network halves it four times), "
            f"got {size}",
            hint=f"use e.g. size=({', '.join(str(v) for v in nearest)})",
        )


def _expected_label(case: Case) -> Path:
    """Where the case's layout expects its label map (for messages)."""
    ct = Path(case.ct_path)
    split = split_image_suffix(ct.name)
    suffix = split[1] if split is not None else IMAGE_SUFFIXES[0]
    if case.layout is None:
        return ct.parent
    root = ct.parent if case.layout is Layout.HECKTOR2021 else ct.parent.parent
    try:
        return layout_paths(root, case.patient_id, case.layout, suffix=suffix)[2]
    except HecktorsegError:
        return ct.parent


def missing_labels(cases: Sequence[Case]) -> dict[str, str]:
    """Reasons for the cases that lack a label map in a dataset where most cases have one.

    A labelled dataset (more than half of its cases have a label map) with a few
    cases without one usually means a missing or misnamed file; training would
    silently lose those patients. A dataset without labels (a test set) gives ``{}``.
    Only cases found in a dataset folder (with a ``layout``) count: a case built by
    hand without a label is taken as meant.
    """
    cases = [c for c in cases if c.layout is not None]
    unlabelled = [c for c in cases if c.label_path is None]
    n_labelled = len(cases) - len(unlabelled)
    if not unlabelled or n_labelled * 2 <= len(cases):
        return {}
    reasons = {}
    for case in unlabelled:
        error = DataError(
            f"patient {case.patient_id}: label map not found, although {n_labelled} of the "
            f"{len(cases)} patients have one",
            path=_expected_label(case),
            hint="add or rename the mask, or pass allow_missing_labels=True "
            "to preprocess this patient without one",
        )
        reasons[case.patient_id] = str(error)
    return reasons
