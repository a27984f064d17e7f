"""The ``paper`` preset: the fields it sets, flags and YAML over it, the recorded configuration, and
the paper's eight folds by patient id (shipped as package data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

import hecktorseg.cli.train
import hecktorseg.training
from hecktorseg.cli import app
from hecktorseg.config import load_yaml
from hecktorseg.data import RandomMirror, RandomRotation, SequentialRotation
from hecktorseg.errors import ConfigError
from hecktorseg.preprocessing import PreprocessConfig
from hecktorseg.training import TrainConfig, build_augmentation, fold_splits, make_splits, paper_fold_coverage
from hecktorseg.training.device import train_precision as _train_precision

runner = CliRunner()
PACKAGE_FILE = Path(hecktorseg.training.__file__).parent / "_data" / "paper_splits.json"


def _lists() -> dict[str, dict[str, list[str]]]:
    data: dict[str, dict[str, list[str]]] = json.loads(PACKAGE_FILE.read_text())
    return data


def test_train_preset_sets_the_paper_recipe() -> None:
    c = TrainConfig.paper()
    assert c.amp is False
    assert _train_precision(c, torch.device("cuda")) == (None, False)  # fp32 on CUDA too, no scaler
    assert _train_precision(TrainConfig(), torch.device("cuda")) == (torch.float16, True)  # ours: unchanged
    assert (c.model, c.n_filters, c.reduction) == ("senorm_unet", 24, 2)
    assert (c.epochs, c.batch_size, c.lr, c.betas, c.weight_decay) == (300, 1, 1e-3, (0.9, 0.99), 0.0)
    assert (c.scheduler, c.t_0, c.t_mult, c.eta_min) == ("cosine_warm_restarts", 25, 1, 1e-5)
    assert (c.loss, c.threshold, c.split) == ("dice_focal", 0.5, "paper")
    assert (c.rotation_p, c.max_angle, c.rotation_axes, c.rotation_mode) == (0.5, 44.0, (1, 3), "sequential")
    assert c.rotation_fill == (0.0, 0.0)
    assert (c.mirror_p, c.mirror_axes, c.scale_p) == (0.5, (0, 3), 0.0)
    assert TrainConfig.paper(epochs=3).epochs == 3


def test_preprocess_preset_is_the_original_preprocessing() -> None:
    c = PreprocessConfig.paper()
    assert (c.legacy, c.pet_stats, c.ct_fill) == (True, "all", 0.0)
    assert (c.spacing, c.size) == ((1.0, 1.0, 1.0), (144, 144, 144))
    assert PreprocessConfig.paper(size=(32, 32, 32)).size == (32, 32, 32)
    assert (PreprocessConfig().legacy, PreprocessConfig().ct_fill) == (False, -1024.0)


def test_augmentation_of_the_preset() -> None:
    paper = build_augmentation(TrainConfig.paper(), image_fill=(-1024.0, 0.0))
    assert paper is not None
    rotation, mirror = paper.transforms  # type: ignore[attr-defined]
    assert isinstance(rotation, SequentialRotation) and rotation.image_fill == (0.0, 0.0)
    assert (rotation.p, rotation.max_angle, rotation.axes) == (0.5, 44, (1, 3))
    assert isinstance(mirror, RandomMirror) and (mirror.p, mirror.axes) == (0.5, (0, 3))
    ours = build_augmentation(TrainConfig(), image_fill=(-1024.0, 0.0))
    assert ours is not None
    rotation, mirror = ours.transforms  # type: ignore[attr-defined]
    assert isinstance(rotation, RandomRotation) and rotation.image_fill == (-1024.0, 0.0)
    assert mirror.axes == (1, 3)


def test_paper_folds_are_the_authors_lists() -> None:
    lists = _lists()
    everyone = sorted(set(lists["train_val_split_0"]["train"]) | set(lists["train_val_split_0"]["val"]))
    assert len(everyone) == 201
    splits = make_splits(everyone, method="paper")
    assert len(splits) == 8
    keys = [f"train_val_split_{k}" for k in range(4)] + [f"train_val_new_split_{k}" for k in range(4)]
    for k, key in enumerate(keys):
        assert splits[k].train == tuple(sorted(lists[key]["train"])), k
        assert splits[k].val == tuple(sorted(lists[key]["val"])), k
        assert paper_fold_coverage(everyone, k).complete
    # centre folds s0-s3 validate on one centre each, in the paper's order
    assert [{pid[:4] for pid in s.val} for s in splits[:4]] == [{"CHGJ"}, {"CHUS"}, {"CHUM"}, {"CHMR"}]
    assert [len(s.val) for s in splits[:4]] == [55, 72, 56, 18]
    assert "s0" in splits[0].description and "ns3" in splits[7].description
    # random folds ns0-ns3 partition the 201 patients
    random_val = [pid for s in splits[4:] for pid in s.val]
    assert sorted(random_val) == everyone


def test_paper_folds_on_a_partial_dataset() -> None:
    ids = ["CHUS004", "CHUM007", "CHUS008", "CHGJ001", "XYZ123"]  # the last two are in no list
    splits = make_splits(ids, method="paper")
    assert splits[1].train == ("CHUM007",) and splits[1].val == ("CHUS004", "CHUS008")
    assert "1 of 129 listed training and 2 of 72 listed validation" in splits[1].description
    coverage = paper_fold_coverage(ids, 1)
    assert coverage.unlisted == ("CHGJ001", "XYZ123")
    assert len(coverage.missing_val) == 70 and len(coverage.missing_train) == 128
    messages = coverage.messages()
    assert len(messages) == 3 and "left out" in messages[2]
    with pytest.raises(ConfigError, match="folds 0-7"):
        paper_fold_coverage(ids, 8)
    with pytest.raises(ConfigError, match="eight folds"):
        TrainConfig(split="paper", fold=8)


QUICK = [
    "--n-filters", "4", "--epochs", "1", "--num-workers", "0", "--device", "cpu",
    "--max-train-batches-per-epoch", "1", "--max-val-batches", "1", "--no-plot",
]  # fmt: skip


def test_cli_preset_trains_the_papers_fold_and_records_the_resolved_config(
    preprocessed_dir: Path, tmp_path: Path
) -> None:
    # the synthetic ids CHUS004, CHUM007, CHUS008 are in the paper's lists; the other five are not
    assert len(fold_splits(preprocessed_dir, TrainConfig.paper())) == 8  # --all-folds trains 8 models
    out = tmp_path / "runs"
    result = runner.invoke(
        app, ["train", str(preprocessed_dir), str(out), "--preset", "paper", "--fold", "1", *QUICK]
    )
    assert result.exit_code == 0, result.output
    split = json.loads((out / "fold_1" / "split.json").read_text())
    assert split["method"] == "paper"
    assert (split["train"], split["val"]) == (["CHUM007"], ["CHUS004", "CHUS008"])
    assert "not preprocessed as the paper" in result.output  # the fixture uses our preprocessing
    saved = yaml.safe_load((out / "fold_1" / "config.yaml").read_text())
    assert saved["amp"] is False and saved["split"] == "paper" and saved["rotation_mode"] == "sequential"
    assert saved["mirror_axes"] == [0, 3] and saved["rotation_fill"] == [0.0, 0.0]
    assert saved["n_filters"] == 4 and saved["epochs"] == 1  # flags beat the preset
    assert load_yaml(TrainConfig, out / "fold_1" / "config.yaml") == TrainConfig.paper(
        n_filters=4, epochs=1, fold=1, num_workers=0, device="cpu", max_train_batches_per_epoch=1,
        max_val_batches=1, plot=False,
    )  # fmt: skip
    # fold 0 (validation centre CHGJ) has no listed validation case in this dataset: a clear error
    result = runner.invoke(
        app, ["train", str(preprocessed_dir), str(out), "--preset", "paper", "--fold", "0", *QUICK]
    )
    assert result.exit_code == 1 and "validation" in result.output and "Traceback" not in result.output


def test_yaml_over_the_preset(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\n  amp: null\n")
    config = load_yaml(TrainConfig, path, section="train", base=TrainConfig.paper())
    assert config.epochs == 7 and config.amp is None  # the file wins, even with null
    assert config.split == "paper" and config.mirror_axes == (0, 3)  # the rest: the preset


def test_cli_preprocess_preset_and_bad_preset(tmp_path: Path) -> None:
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.preprocessing import read_manifest

    raw = tmp_path / "raw"
    write_synthetic_dataset(raw, n_cases=1, seed=0)
    out = tmp_path / "pre"
    args = ["preprocess", str(raw), str(out), "--preset", "paper", "--spacing", "4.5", "--size", "32"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = read_manifest(out).config
    assert (config.legacy, config.pet_stats, config.ct_fill) == (True, "all", 0.0)
    assert config.size == (32, 32, 32)  # the flag beats the preset
    bad = runner.invoke(app, ["preprocess", str(raw), str(tmp_path / "x"), "--preset", "nope"])
    assert bad.exit_code == 1 and "--preset" in bad.output


def test_train_help_quotes_the_ensemble_pattern() -> None:
    # unquoted, the shell expands runs/fold_*/best.pt into several words and predict refuses them
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0
    assert "--model 'runs/fold_*/best.pt'" in result.output
    assert "--model runs/fold_*" not in result.output
    assert "--model 'runs/fold_*/best.pt'" in (hecktorseg.cli.train.__doc__ or "")
