"""A 3-class model learns the lymph nodes (GTVn) with the defaults for GTVp + GTVn data.

A small, deterministic training on tiny 2025 phantoms: the validation GTVn aggregated Dice
(the 2025 metric, over all validation cases) must rise well above that of the untrained
model, and the paper's loss — which learned no node on the phantoms (the GTVn ablation in
the training docs) — is not what the defaults train with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hecktorseg.data import PreprocessedDataset, SyntheticConfig, write_synthetic_dataset
from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset
from hecktorseg.training import TrainConfig, Trainer, dataset_n_classes, fold_splits

N_CASES = 12
N_VAL = 3


@pytest.fixture(scope="module")
def nodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve tiny 2025 phantoms (0-4 nodes each) on 32x32x48 voxels of 4 mm."""
    root = tmp_path_factory.mktemp("gtvn")
    cases = write_synthetic_dataset(
        root / "raw", n_cases=N_CASES, edition="2025", seed=3, config=SyntheticConfig.tiny()
    )
    out = root / "pre"
    report = preprocess_dataset(cases, out, PreprocessConfig(spacing=(4.0, 4.0, 4.0), size=(32, 32, 48)))
    assert not report.failed, report.failed
    return out


def _config(nodes_dir: Path, **changes: object) -> TrainConfig:
    ids = sorted(p.name for p in nodes_dir.iterdir() if p.is_dir())
    split = nodes_dir.parent / "split.json"
    split.write_text(json.dumps([{"train": ids[:-N_VAL], "val": ids[-N_VAL:]}]))
    values: dict[str, object] = {
        "n_filters": 4,
        "epochs": 20,
        "lr": 1e-2,
        "t_0": 20,
        "split": "file",
        "split_file": str(split),
        "num_workers": 0,
        "device": "cpu",
        "amp": False,
        "rotation_p": 0.0,
        "mirror_p": 0.5,
        "deterministic": True,
        "plot": False,
        **changes,
    }
    return TrainConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: the same sums in the same order whatever the machine's load or workers."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_validation_gtvn_rises_well_above_the_untrained_model(nodes_dir: Path, tmp_path: Path) -> None:
    config = _config(nodes_dir)
    split = fold_splits(nodes_dir, config)[0]
    train_ds = PreprocessedDataset(nodes_dir, split.train, seed=config.seed)
    val_ds = PreprocessedDataset(nodes_dir, split.val, seed=config.seed)
    # the validation cases hold nodes, so the aggregated Dice measures finding them
    assert dataset_n_classes(nodes_dir) == 3
    assert any(val_ds.raw(i).label.max() == 2 for i in range(len(val_ds)))
    trainer = Trainer(config, train_ds, val_ds, tmp_path / "fold_0")
    assert (trainer.config.loss, trainer.config.dice_skip_absent) == ("dice_ce", True)  # the 3-class defaults
    untrained = trainer.validate_metrics().val_class_dsc_agg[1]
    result = trainer.fit()
    best = next(r for r in result.history if r.epoch == result.best_epoch)
    learned = best.val_class_dsc_agg[1]
    curve = [round(r.val_class_dsc_agg[1], 3) for r in result.history]
    assert untrained < 0.05, untrained
    assert learned > untrained + 0.3, curve
    # the per-case GTVn Dice counts only the cases with nodes: the same order as the aggregate
    assert best.val_class_dice[1] > 0.25, best
