"""How many classes a dataset trains, and the validation score that picks ``best.pt``.

Number of output channels (``TrainConfig.n_classes``):

* ``None`` (the default) — from the preprocessed dataset: the label values of every
  labelled case, as its manifest records them (``label_voxels``; manifests of older
  versions: read from the preprocessed label maps); if any case has label 2 (GTVn, the
  HECKTOR 2022 and 2025/2026 editions) the model gets **3** outputs (softmax over
  background / GTVp / GTVn), otherwise **1** (sigmoid, the paper's binary GTVt model);
* a number — used as given (``--n-classes 1`` trains a binary GTVp model on a 0/1/2
  dataset: the target is ``label == 1``).

Model selection score (the ``val_score`` column of ``metrics.csv``; ``best.pt`` is the
epoch with the highest score):

* one output channel: the mean per-case validation Dice (``val_dice``), as in the paper;
* several channels: the mean of (a) the mean per-case Dice of label 1 (GTVp) and (b) the
  aggregated Dice ``2ΣTP / Σ(|pred| + |true|)`` over all validation cases of each label
  ≥ 2 (GTVn) — the two segmentation metrics of the HECKTOR 2025 rules, computed on the
  preprocessed grid (voxel counts; the grid is isotropic, so they are proportional to
  mm³). A label that is absent from both prediction and truth in every case has an
  aggregated Dice of 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from hecktorseg.errors import DataError
from hecktorseg.io import image_to_array, read_image
from hecktorseg.preprocessing import Manifest, read_manifest
from hecktorseg.training.config import TrainConfig
from hecktorseg.typing import PathLike

__all__ = [
    "LOSS_DEFAULTS",
    "aggregated_dice",
    "dataset_label_values",
    "dataset_n_classes",
    "foreground_cases",
    "resolve_loss_defaults",
    "selection_score",
]

LOSS_DEFAULTS: dict[str, dict[str, Any]] = {
    # the paper's loss, for its binary GTVt (and any one-output) model
    "one output": {"loss": "dice_focal", "dice_skip_absent": False},
    # GTVp + GTVn: the pair that learned the lymph nodes in the ablation (docs: "Training" → GTVn)
    "several outputs": {"loss": "dice_ce", "dice_skip_absent": True},
}
"""What ``loss: auto`` and ``dice_skip_absent: null`` become, by the number of model outputs.

One output keeps the paper's Dice + focal. Several outputs (background, GTVp, GTVn) train
with Dice + cross-entropy and leave classes absent from a sample out of its Dice term:
on the 2025 phantoms this pair, with a fine enough grid, took the GTVn aggregated Dice from
0 to about 0.7 (the documented ablation); the paper's loss did not find a node."""

logger = logging.getLogger(__name__)


def dataset_label_values(data: PathLike | Manifest, patient_ids: Sequence[str] | None = None) -> set[int]:
    """The label values present in the label maps of a dataset (as its manifest records them).

    Parameters
    ----------
    data
        A preprocessed folder (with ``manifest.json``) or its :class:`~hecktorseg.preprocessing.Manifest`.
    patient_ids
        Only these cases (default: every labelled case of the manifest).

    Raises
    ------
    DataError
        A label map cannot be read.
    """
    manifest = data if isinstance(data, Manifest) else read_manifest(data)
    ids = sorted(manifest.entries) if patient_ids is None else list(patient_ids)
    values: set[int] = set()
    for pid in ids:
        entry = manifest.entries.get(pid)
        if entry is None or entry.label_path is None:
            continue
        if entry.label_voxels:  # recorded at preprocessing time (label value → voxels)
            values.add(0)
            values.update(int(k) for k, n in entry.label_voxels.items() if n > 0)
            continue
        array = image_to_array(read_image(entry.label_path, kind="label"))  # records of older versions
        values.update(int(v) for v in np.unique(array))
    return values


def foreground_cases(manifest: Manifest, patient_ids: Sequence[str]) -> dict[int, int]:
    """How many of ``patient_ids`` hold each label value (> 0) inside their box, i.e. in the
    preprocessed label map the network trains on.

    The counts come from the manifest (``label_voxels`` minus ``label_voxels_outside_box``); a
    case that records none (an empty label, or a manifest of an older version) is read from
    its preprocessed label map. Cases without a label map are not counted.

    Raises
    ------
    DataError
        A label map cannot be read.
    """
    counts: dict[int, int] = {}
    for pid in patient_ids:
        entry = manifest.entries.get(pid)
        if entry is None or entry.label_path is None:
            continue
        if entry.label_voxels:
            inside = {k: n - entry.label_voxels_outside_box.get(k, 0) for k, n in entry.label_voxels.items()}
            present = {int(k) for k, n in inside.items() if n > 0}
        else:
            array = image_to_array(read_image(entry.label_path, kind="label"))
            present = {int(v) for v in np.unique(array) if v > 0}
        for value in present:
            counts[value] = counts.get(value, 0) + 1
    return counts


def dataset_n_classes(data: PathLike | Manifest, patient_ids: Sequence[str] | None = None) -> int:
    """Output channels for a dataset: 3 when its labels include 2 (GTVp + GTVn), else 1.

    Raises
    ------
    DataError
        A label value above 2 (this library knows background, GTVp and GTVn), or an
        unreadable label map.
    """
    values = dataset_label_values(data, patient_ids)
    where = data.out_dir if isinstance(data, Manifest) else data
    unknown = sorted(v for v in values if v not in (0, 1, 2))
    if unknown:
        raise DataError(
            f"label values {unknown} found; known labels are 0 (background), 1 (GTVp) and 2 (GTVn)",
            path=where,
            hint="fix the label maps, or set n_classes= explicitly",
        )
    n = 3 if 2 in values else 1
    logger.info("dataset labels %s: training %d output channel(s)", sorted(values), n)
    return n


def aggregated_dice(intersection: float, predicted: float, true: float) -> float:
    """``2·intersection / (predicted + true)``, 1 when both are 0 (sums over all cases)."""
    total = predicted + true
    return 1.0 if total == 0 else 2.0 * intersection / total


def selection_score(mean_dice: float, class_dice: Sequence[float], class_dsc_agg: Sequence[float]) -> float:
    """The score that selects ``best.pt`` (see :mod:`hecktorseg.training.classes`).

    Parameters
    ----------
    mean_dice
        Mean per-case Dice (the score of binary models).
    class_dice
        Mean per-case Dice of labels 1 … C−1 (empty for binary models).
    class_dsc_agg
        Aggregated Dice of labels 1 … C−1 (empty for binary models).
    """
    if not class_dice:
        return float(mean_dice)
    parts = [float(class_dice[0]), *(float(v) for v in class_dsc_agg[1:])]
    parts = [p for p in parts if not math.isnan(p)]
    return sum(parts) / len(parts) if parts else math.nan


def resolve_loss_defaults(config: TrainConfig, n_classes: int) -> TrainConfig:
    """``config`` with ``loss: auto`` and ``dice_skip_absent: null`` set for a model of ``n_classes`` outputs.

    The values come from :data:`LOSS_DEFAULTS`; fields the user set are kept. The trainer
    records the result (``config.yaml``, checkpoints), so a run states the loss it used.
    """
    defaults = LOSS_DEFAULTS["one output" if n_classes <= 1 else "several outputs"]
    changes: dict[str, Any] = {}
    if config.loss == "auto":
        changes["loss"] = defaults["loss"]
    if config.dice_skip_absent is None:
        changes["dice_skip_absent"] = defaults["dice_skip_absent"]
    return attrs.evolve(config, **changes) if changes else config
