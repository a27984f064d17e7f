"""Cross-validation splits: leave-one-centre-out, seeded random k-fold, or a user JSON file.

The split a run used is written beside its results (``split.json``) and can be
fed back with ``split: file`` / ``split_file: .../split.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from hecktorseg.errors import ConfigError
from hecktorseg.io import atomic_write_text, centre_of
from hecktorseg.typing import PathLike

__all__ = ["Split", "centre_of", "load_split_file", "make_splits", "save_split"]


@attrs.frozen
class Split:
    """One fold: which cases train and which validate.

    Attributes
    ----------
    fold
        0-based fold index.
    train, val
        Sorted patient ids.
    method
        ``"centre"``, ``"random"`` or ``"file"``.
    description
        Human-readable note (e.g. ``"validation centre CHGJ"``).
    """

    fold: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    method: str
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (the format of ``split.json`` and of split files)."""
        return {
            "fold": self.fold,
            "method": self.method,
            "description": self.description,
            "train": list(self.train),
            "val": list(self.val),
        }


def load_split_file(path: PathLike, patient_ids: Sequence[str]) -> list[Split]:
    """Read user folds from JSON.

    Accepted forms: ``{"folds": [{"train": [...], "val": [...]}, ...]}``, a list of
    such folds, or a single fold ``{"train": [...], "val": [...]}`` (e.g. a saved
    ``split.json``). A fold without ``"train"`` trains on every other case.

    Raises
    ------
    ConfigError
        If the file is missing or malformed, or names unknown cases.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("split file not found", path=p, hint="check train.split_file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"split file is not valid JSON: {exc}", path=p) from None
    if isinstance(data, Mapping) and "folds" in data:
        folds = data["folds"]
    elif isinstance(data, Mapping) and "val" in data:
        folds = [data]
    else:
        folds = data
    if not isinstance(folds, list) or not folds:
        raise ConfigError("split file must hold a non-empty list of folds", path=p, hint='{"folds": [...]}')
    known = set(patient_ids)
    splits: list[Split] = []
    for k, fold in enumerate(folds):
        where = f"folds[{k}]"
        if not isinstance(fold, Mapping) or not isinstance(fold.get("val"), list):
            raise ConfigError(f"{where}: expected a mapping with a list 'val'", path=p)
        val = [str(v) for v in fold["val"]]
        train_raw = fold.get("train")
        if train_raw is None:
            train = [pid for pid in patient_ids if pid not in set(val)]
        elif isinstance(train_raw, list):
            train = [str(v) for v in train_raw]
        else:
            raise ConfigError(f"{where}.train: expected a list of patient ids", path=p)
        unknown = sorted((set(val) | set(train)) - known)
        if unknown:
            raise ConfigError(
                f"{where}: unknown patient id(s) {', '.join(unknown[:5])}",
                path=p,
                hint="ids must be cases of the preprocessed dataset",
            )
        overlap = sorted(set(val) & set(train))
        if overlap:
            raise ConfigError(f"{where}: case(s) both in train and val: {', '.join(overlap[:5])}", path=p)
        splits.append(Split(k, tuple(sorted(train)), tuple(sorted(val)), "file", f"from {p.name}"))
    return splits


def make_splits(
    patient_ids: Sequence[str],
    *,
    method: Literal["centre", "random", "file"] = "centre",
    n_folds: int = 4,
    seed: int = 0,
    split_file: PathLike | None = None,
    centres: Mapping[str, str] | None = None,
) -> list[Split]:
    """All folds of a cross-validation.

    Parameters
    ----------
    patient_ids
        The labelled cases.
    method
        ``"centre"``: one fold per centre (sorted by centre code), validating on that
        centre; ``"random"``: ``n_folds`` folds of a seeded shuffle (sizes differ by
        at most one); ``"file"``: the folds of ``split_file``.
    n_folds
        Number of random folds.
    seed
        Seed of the random shuffle.
    split_file
        JSON file for ``method="file"`` (see :func:`load_split_file`).
    centres
        Centre of each case, e.g. from the manifest (default: :func:`hecktorseg.io.centre_of`
        of the id alone, i.e. the letters at its start).

    Raises
    ------
    ConfigError
        Too few cases or centres for the requested folds, or a bad split file.
    """
    ids = sorted(patient_ids)
    if method == "file":
        if split_file is None:
            raise ConfigError("train.split_file: required when split is 'file'")
        return load_split_file(split_file, ids)
    if method == "centre":
        centre = {pid: (centres[pid] if centres and pid in centres else centre_of(pid)) for pid in ids}
        names = sorted(set(centre.values()))
        if len(names) < 2:
            raise ConfigError(
                f"train.split: leave-one-centre-out needs cases from >= 2 centres, found {names}",
                hint="use split: random",
            )
        return [
            Split(
                k,
                tuple(pid for pid in ids if centre[pid] != name),
                tuple(pid for pid in ids if centre[pid] == name),
                "centre",
                f"validation centre {name}",
            )
            for k, name in enumerate(names)
        ]
    if method == "random":
        if n_folds < 2 or n_folds > len(ids):
            raise ConfigError(
                f"train.n_folds: need 2 <= n_folds <= number of cases ({len(ids)}), got {n_folds}"
            )
        order = np.random.default_rng(seed).permutation(len(ids))
        chunks = np.array_split(order, n_folds)
        splits = []
        for k, chunk in enumerate(chunks):
            val = {ids[int(i)] for i in chunk}
            splits.append(
                Split(
                    k,
                    tuple(pid for pid in ids if pid not in val),
                    tuple(sorted(val)),
                    "random",
                    f"random fold {k + 1} of {n_folds} (seed {seed})",
                )
            )
        return splits
    raise ConfigError(f"train.split: expected one of 'centre', 'random', 'file', got {method!r}")


def save_split(split: Split, path: PathLike, *, seed: int | None = None) -> None:
    """Write ``split`` as JSON, atomically (readable by :func:`load_split_file`)."""
    data = split.to_dict()
    if seed is not None:
        data["seed"] = seed
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
