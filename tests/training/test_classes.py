"""GTVp + GTVn training: 3 outputs from the manifest, per-class validation, the selection score."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hecktorseg.models import load_checkpoint
from hecktorseg.training import TrainConfig, read_metrics_csv, train
from hecktorseg.training.classes import aggregated_dice, dataset_n_classes, selection_score
from hecktorseg.training.steps import class_overlaps

QUICK = {
    "n_filters": 4,
    "split": "random",
    "n_folds": 2,
    "num_workers": 0,
    "device": "cpu",
    "rotation_p": 0.0,
    "mirror_p": 0.0,
    "lr": 1e-2,
}


@pytest.fixture(scope="module")
def nodes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 2022-style phantoms (labels 0/1/2) preprocessed to 32³ voxels of 4.5 mm."""
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

    root = tmp_path_factory.mktemp("nodes")
    write_synthetic_dataset(root / "raw", n_cases=4, edition="2022", seed=3)
    out = root / "pre"
    report = preprocess_dataset(root / "raw", out, PreprocessConfig(spacing=(4.5,) * 3, size=(32,) * 3))
    assert not report.failed, report.failed
    return out


def test_n_classes_comes_from_the_manifest(nodes_dir: Path, preprocessed_dir: Path) -> None:
    assert dataset_n_classes(nodes_dir) == 3
    assert dataset_n_classes(preprocessed_dir) == 1


def test_three_class_training_writes_per_class_metrics(nodes_dir: Path, tmp_path: Path) -> None:
    result = train(nodes_dir, tmp_path, TrainConfig(**QUICK, epochs=2), fold=0)  # type: ignore[arg-type]
    fold = tmp_path / "fold_0"
    model = load_checkpoint(fold / "best.pt").model
    with torch.no_grad():
        assert model(torch.zeros(1, 2, 32, 32, 32)).shape[1] == 3
    with (fold / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[6:] == [
        "train_seconds",
        "val_dice_gtvp",
        "val_dice_gtvn",
        "val_dsc_agg_gtvp",
        "val_dsc_agg_gtvn",
        "val_score",
    ]
    history = read_metrics_csv(fold / "metrics.csv")
    for h in history:
        assert len(h.val_class_dice) == 2 and len(h.val_class_dsc_agg) == 2
        # the documented score: mean of the GTVp mean Dice and the GTVn aggregated Dice
        assert h.val_score == pytest.approx((h.val_class_dice[0] + h.val_class_dsc_agg[1]) / 2)
    best = max(history, key=lambda h: h.val_score)
    assert (result.best_epoch, result.best_dice) == (best.epoch, pytest.approx(best.val_score))
    assert (fold / "learning_curves.png").stat().st_size > 0


def test_n_classes_flag_overrides_the_manifest(nodes_dir: Path, tmp_path: Path) -> None:
    train(nodes_dir, tmp_path, TrainConfig(**QUICK, epochs=1, n_classes=1), fold=0)  # type: ignore[arg-type]
    model = load_checkpoint(tmp_path / "fold_0" / "best.pt").model
    with torch.no_grad():
        assert model(torch.zeros(1, 2, 32, 32, 32)).shape[1] == 1
    with (tmp_path / "fold_0" / "metrics.csv").open() as handle:
        assert next(csv.reader(handle)) == [
            "epoch",
            "lr",
            "train_loss",
            "val_loss",
            "val_dice",
            "seconds",
            "train_seconds",
        ]


def test_class_overlaps_against_numpy() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 6, 7, generator=gen)
    label = torch.randint(0, 3, (2, 1, 5, 6, 7), generator=gen).float()
    got = class_overlaps(logits, label).numpy()
    arg = logits.numpy().argmax(axis=1)
    lab = label.numpy()[:, 0].astype(int)
    for n in range(2):
        for k in (1, 2):
            p, t = arg[n] == k, lab[n] == k
            assert got[n, k - 1].tolist() == [float((p & t).sum()), float(p.sum()), float(t.sum())]


def test_aggregated_dice_and_score_by_hand() -> None:
    # case A: GTVn 2 of 4 predicted voxels right, 3 true; case B: 1 predicted, 1 true, overlap 1
    inter, pred, true = 2 + 1, 4 + 1, 3 + 1
    assert aggregated_dice(inter, pred, true) == pytest.approx(6 / 9)
    assert aggregated_dice(0, 0, 0) == 1.0
    assert selection_score(0.5, [0.8, 0.1], [0.7, 0.6]) == pytest.approx(0.7)
    assert selection_score(0.5, [], []) == 0.5
    assert math.isnan(selection_score(math.nan, [], []))
    assert np.isfinite(selection_score(0.0, [0.2], [0.3]))


def test_per_class_validation_dice_counts_only_the_cases_holding_the_class(
    nodes_dir: Path, tmp_path: Path
) -> None:
    """The last epoch's per-class Dice, recomputed with NumPy from last.pt on the validation cases."""
    from hecktorseg.data import PreprocessedDataset
    from hecktorseg.training import fold_splits

    config = TrainConfig(**QUICK, epochs=2)  # type: ignore[arg-type]
    train(nodes_dir, tmp_path, config, fold=0)
    last = read_metrics_csv(tmp_path / "fold_0" / "metrics.csv")[-1]
    model = load_checkpoint(tmp_path / "fold_0" / "last.pt").model.eval()
    val = PreprocessedDataset(nodes_dir, fold_splits(nodes_dir, config)[0].val)
    per_class: dict[int, list[float]] = {1: [], 2: []}
    agg = {k: [0.0, 0.0] for k in (1, 2)}
    for i in range(len(val)):
        item = val[i]
        with torch.no_grad():
            arg = model(item["image"][None]).argmax(dim=1)[0].numpy()
        lab = item["label"][0].numpy().astype(int)
        for k in (1, 2):
            p, t = arg == k, lab == k
            agg[k][0] += 2 * float((p & t).sum())
            agg[k][1] += float(p.sum() + t.sum())
            if t.any():  # a case without the class adds nothing to its mean Dice
                per_class[k].append(2 * float((p & t).sum()) / float(p.sum() + t.sum()))
    for k in (1, 2):
        expected = float(np.mean(per_class[k])) if per_class[k] else math.nan
        got = last.val_class_dice[k - 1]
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-9)
        total = agg[k][1]
        assert last.val_class_dsc_agg[k - 1] == pytest.approx(agg[k][0] / total if total else 1.0, abs=1e-9)


def test_loss_defaults_follow_the_number_of_outputs() -> None:
    from hecktorseg.losses import DiceCELoss, DiceFocalLoss
    from hecktorseg.training import build_train_loss, resolve_loss_defaults

    auto = TrainConfig()
    one, three = resolve_loss_defaults(auto, 1), resolve_loss_defaults(auto, 3)
    assert (one.loss, one.dice_skip_absent) == ("dice_focal", False)
    assert (three.loss, three.dice_skip_absent) == ("dice_ce", True)
    # what the user sets is kept, and the paper preset keeps the paper's loss on GTVn data
    mine = resolve_loss_defaults(TrainConfig(loss="dice", dice_skip_absent=False), 3)
    assert (mine.loss, mine.dice_skip_absent) == ("dice", False)
    paper = resolve_loss_defaults(TrainConfig.paper(), 3)
    assert (paper.loss, paper.dice_skip_absent) == ("dice_focal", False)
    built = build_train_loss(auto, 3)
    assert isinstance(built, DiceCELoss) and built.skip_absent and not built.batch_dice
    assert isinstance(build_train_loss(auto, 1), DiceFocalLoss)


def test_the_run_records_the_loss_it_used(nodes_dir: Path, tmp_path: Path) -> None:
    import yaml

    train(nodes_dir, tmp_path, TrainConfig(**QUICK, epochs=1), fold=0)  # type: ignore[arg-type]
    recorded = yaml.safe_load((tmp_path / "fold_0" / "config.yaml").read_text())
    recorded = recorded.get("train", recorded)
    assert (recorded["loss"], recorded["dice_skip_absent"]) == ("dice_ce", True)
    metadata = load_checkpoint(tmp_path / "fold_0" / "best.pt").metadata
    assert metadata["train"]["loss"] == "dice_ce"


def test_foreground_cases_match_the_preprocessed_label_maps(preprocessed_dir: Path) -> None:
    """The manifest's counts (inside the box) agree with the label maps the network trains on."""
    from hecktorseg.io import image_to_array, read_image
    from hecktorseg.preprocessing import read_manifest
    from hecktorseg.training.classes import foreground_cases

    manifest = read_manifest(preprocessed_dir)
    ids = sorted(manifest.entries)
    expected: dict[int, int] = {}
    for pid in ids:
        label = manifest.entries[pid].label_path
        assert label is not None
        for value in np.unique(image_to_array(read_image(label, kind="label"))):
            if value > 0:
                expected[int(value)] = expected.get(int(value), 0) + 1
    assert expected  # the phantoms have tumours
    assert foreground_cases(manifest, ids) == expected
