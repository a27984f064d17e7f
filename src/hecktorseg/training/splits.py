"""Cross-validation splits: leave-one-centre-out, seeded random k-fold, a user JSON file, or
the paper's own eight folds.

The split a run used is written beside its results (``split.json``) and can be
fed back with ``split: file`` / ``split_file: .../split.json``.

The paper's folds (``split: paper``) are shipped with the package
(``hecktorseg/training/_data/paper_splits.json``, the authors' patient lists): fold
0–3 are the leave-one-centre-out folds s0–s3 (``train_val_split_K``; validation
CHGJ, CHUS, CHUM, CHMR) and fold 4–7 the random folds ns0–ns3
(``train_val_new_split_{K-4}``). On a dataset that does not hold exactly the 201
HECKTOR 2020 training cases, a fold uses the listed cases that are present; cases
of the dataset in neither list of the fold are left out (see :func:`paper_fold_coverage`;
training logs a warning for both, and refuses a fold left without training or
validation cases).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from hecktorseg.errors import ConfigError, DataError
from hecktorseg.io import atomic_write_text, centre_of
from hecktorseg.io.files import check_input_file
from hecktorseg.training.config import TrainConfig
from hecktorseg.typing import PathLike

if TYPE_CHECKING:
    from hecktorseg.preprocessing import Manifest

__all__ = [
    "PAPER_FOLD_KEYS",
    "PAPER_FOLD_NAMES",
    "PaperFoldCoverage",
    "Split",
    "fold_splits",
    "labelled_ids",
    "left_out_cases",
    "load_split_file",
    "make_splits",
    "paper_fold_coverage",
    "paper_fold_lists",
    "paper_splits",
    "save_split",
]

PAPER_FOLD_NAMES = ("s0", "s1", "s2", "s3", "ns0", "ns1", "ns2", "ns3")
"""The paper's model names of folds 0–7."""

PAPER_FOLD_KEYS = tuple(f"train_val_split_{k}" for k in range(4)) + tuple(
    f"train_val_new_split_{k}" for k in range(4)
)
"""The keys of folds 0–7 in the authors' split file."""


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
        check_input_file(p, what="split file")  # a FIFO or /dev/zero would hang or fill the memory
    except DataError as exc:
        raise ConfigError(exc.message, path=p, hint="check train.split_file") from None
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
        for part, ids in (("val", val), ("train", train)):
            repeated = sorted({pid for pid in ids if ids.count(pid) > 1})
            if repeated:
                raise ConfigError(
                    f"{where}.{part}: patient id(s) listed more than once: {', '.join(repeated[:5])}",
                    path=p,
                    hint="list each case once per fold",
                )
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


@functools.cache
def paper_fold_lists() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """The authors' ``(train, val)`` patient lists of folds 0–7 (package data, read once).

    Raises
    ------
    ConfigError
        The package data is missing or damaged (reinstall hecktorseg).
    """
    resource = importlib.resources.files("hecktorseg.training").joinpath("_data/paper_splits.json")
    try:
        data = json.loads(resource.read_text(encoding="utf-8"))
        folds = tuple(
            (tuple(str(v) for v in data[key]["train"]), tuple(str(v) for v in data[key]["val"]))
            for key in PAPER_FOLD_KEYS
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the paper's fold lists (package data paper_splits.json) cannot be read: {exc}",
            hint="reinstall hecktorseg",
        ) from None
    return folds


@attrs.frozen
class PaperFoldCoverage:
    """How a dataset covers one of the paper's folds.

    Attributes
    ----------
    fold
        0–7.
    missing_train, missing_val
        Listed cases of the fold that the dataset lacks (sorted).
    unlisted
        Cases of the dataset in neither list of the fold (left out, sorted).
    """

    fold: int
    missing_train: tuple[str, ...]
    missing_val: tuple[str, ...]
    unlisted: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Whether the fold is the paper's exactly (nothing missing, nothing left out)."""
        return not (self.missing_train or self.missing_val or self.unlisted)

    def messages(self) -> list[str]:
        """One warning line per kind of difference from the paper's fold."""
        name = f"paper fold {self.fold} ({PAPER_FOLD_NAMES[self.fold]})"
        out = []
        for what, ids in (
            ("validation", self.missing_val),
            ("training", self.missing_train),
        ):
            if ids:
                out.append(
                    f"{name}: {len(ids)} listed {what} case(s) are not in the dataset and are skipped "
                    f"(e.g. {', '.join(ids[:3])})"
                )
        if self.unlisted:
            out.append(
                f"{name}: {len(self.unlisted)} case(s) of the dataset are in neither list and are left out "
                f"(e.g. {', '.join(self.unlisted[:3])})"
            )
        return out


def paper_fold_coverage(patient_ids: Sequence[str], fold: int) -> PaperFoldCoverage:
    """Compare the dataset's cases with the paper's lists of ``fold`` (0–7)."""
    if not 0 <= fold < len(PAPER_FOLD_KEYS):
        raise ConfigError(f"train.fold: the paper has folds 0-7, got {fold}")
    train, val = paper_fold_lists()[fold]
    ids = set(patient_ids)
    return PaperFoldCoverage(
        fold,
        tuple(sorted(set(train) - ids)),
        tuple(sorted(set(val) - ids)),
        tuple(sorted(ids - set(train) - set(val))),
    )


def paper_splits(patient_ids: Sequence[str]) -> list[Split]:
    """The paper's eight folds restricted to ``patient_ids`` (fold k's lists ∩ the dataset)."""
    ids = set(patient_ids)
    splits = []
    for k, (train, val) in enumerate(paper_fold_lists()):
        kept_train = tuple(sorted(set(train) & ids))
        kept_val = tuple(sorted(set(val) & ids))
        if k < 4:
            centres = sorted({centre_of(pid) for pid in val})
            kind = f"validation centre {', '.join(centres)}"
        else:
            kind = "random fold"
        note = f"paper fold {PAPER_FOLD_NAMES[k]} ({PAPER_FOLD_KEYS[k]}), {kind}"
        if len(kept_train) < len(train) or len(kept_val) < len(val):
            note += (
                f"; {len(kept_train)} of {len(train)} listed training and {len(kept_val)} of "
                f"{len(val)} listed validation cases present"
            )
        splits.append(Split(k, kept_train, kept_val, "paper", note))
    return splits


def make_splits(
    patient_ids: Sequence[str],
    *,
    method: Literal["centre", "random", "file", "paper"] = "centre",
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
        at most one); ``"file"``: the folds of ``split_file``; ``"paper"``: the
        paper's eight folds (see :func:`paper_splits`).
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
    if method == "paper":
        return paper_splits(ids)
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
    raise ConfigError(f"train.split: expected one of 'centre', 'random', 'file', 'paper', got {method!r}")


def save_split(split: Split, path: PathLike, *, seed: int | None = None) -> None:
    """Write ``split`` as JSON, atomically (readable by :func:`load_split_file`)."""
    data = split.to_dict()
    if seed is not None:
        data["seed"] = seed
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def labelled_ids(manifest: Manifest) -> list[str]:
    """The sorted patient ids of a preprocessed dataset's cases that have a label map."""
    return sorted(pid for pid, entry in manifest.entries.items() if entry.label_path is not None)


def fold_splits(data_dir: PathLike, config: TrainConfig, *, manifest: Manifest | None = None) -> list[Split]:
    """All folds of ``config``'s split over the labelled cases of a preprocessed dataset.

    ``manifest`` is the dataset's manifest when the caller has read it already.
    """
    if manifest is None:
        from hecktorseg.preprocessing import read_manifest  # here: keeps this module light

        manifest = read_manifest(data_dir)
    entries = manifest.entries
    ids = labelled_ids(manifest)
    if len(ids) < 2:
        raise DataError(
            f"found {len(ids)} labelled case(s); training needs at least 2",
            path=Path(data_dir) / "manifest.json",
            hint="preprocess a dataset with ground-truth masks",
        )
    centres = {pid: entry.centre for pid, entry in entries.items() if entry.centre}
    return make_splits(
        ids,
        method=config.split,
        n_folds=config.n_folds,
        seed=config.seed,
        split_file=config.split_file,
        centres=centres,
    )


def left_out_cases(entries: Mapping[str, Any], split: Split) -> dict[str, str]:
    """Why each case of a preprocessed dataset is in neither the training nor the validation set.

    Parameters
    ----------
    entries
        The manifest's entries (objects with a ``label_path``), by patient id.
    split
        The fold.

    Returns
    -------
    dict
        ``{patient_id: reason}``: ``"no label map"`` or ``"not in this fold of the split file"``.
    """
    used = set(split.train) | set(split.val)
    reasons: dict[str, str] = {}
    for pid, entry in entries.items():
        if pid in used:
            continue
        if getattr(entry, "label_path", None) is None:
            reasons[pid] = "no label map"
        else:
            reasons[pid] = "not in this fold of the split"
    return reasons
