"""Where augmentation runs (augment_device) and the trainer's batches built on the training device.

The device path is exercised on the CPU: its code is the same on CUDA, only faster.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch

from hecktorseg.config import load_yaml
from hecktorseg.data import DeviceVolumes, PreprocessedDataset, RandomMirror
from hecktorseg.errors import ConfigError
from hecktorseg.models import read_checkpoint_file
from hecktorseg.training import TrainConfig, device_data, resolve_loss_defaults, train
from hecktorseg.training.device_data import augment_on_device

TINY = {
    "n_filters": 4,
    "split": "random",
    "n_folds": 4,
    "num_workers": 0,
    "device": "cpu",
    "epochs": 2,
    "max_train_batches_per_epoch": 2,
    "max_val_batches": 1,
    "batch_size": 2,
    "plot": False,
    "rotation_p": 0.8,
    "mirror_p": 0.5,
    "deterministic": True,
}


def test_augment_device_choice_with_and_without_cuda(request: pytest.FixtureRequest) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    request.getfixturevalue("cuda_visible")
    assert augment_on_device(TrainConfig(), cuda)  # auto on CUDA: the GPU
    assert not augment_on_device(TrainConfig(), cpu)  # auto on the CPU: the loader workers
    assert not augment_on_device(TrainConfig(augment_device="cpu"), cuda)
    assert augment_on_device(TrainConfig(augment_device="cuda"), cuda)
    with pytest.raises(ConfigError, match="augment_device"):
        augment_on_device(TrainConfig(augment_device="cuda"), cpu)


def test_device_volumes_cache_or_read_per_batch_give_the_same_raw_batch(preprocessed_dir: Path) -> None:
    dataset = PreprocessedDataset(preprocessed_dir, transform=RandomMirror())
    cached = DeviceVolumes(dataset, torch.device("cpu"))
    uncached = DeviceVolumes(dataset, torch.device("cpu"), share=0.0)  # budget 0: never fits
    assert cached.cached and not uncached.cached
    a, b = cached.gather([3, 1]), uncached.gather([3, 1])
    raw = dataset.raw(1)
    assert torch.equal(a["image"][1, 0], torch.from_numpy(raw.ct))
    assert torch.equal(a["label"][1, 0], torch.from_numpy(raw.label).float())
    for key in ("image", "label", "mask"):
        assert torch.equal(a[key], b[key])


def _force_device_augmentation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch the augmentation on the training device although it is the CPU (the CUDA code path)."""
    monkeypatch.setattr(device_data, "augment_on_device", lambda config, device: True)


def test_training_with_device_augmentation_is_reproducible_and_says_so(
    preprocessed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _force_device_augmentation(monkeypatch)
    config = TrainConfig(**TINY)
    with caplog.at_level(logging.INFO, logger="hecktorseg"):
        first = train(preprocessed_dir, tmp_path / "a", config, fold=0)
    second = train(preprocessed_dir, tmp_path / "b", config, fold=0)
    assert first.runtime is not None and first.runtime.augment_device == "cpu (batched)"
    assert [h.train_loss for h in first.history] == [h.train_loss for h in second.history]
    a = read_checkpoint_file(first.last_checkpoint)["state_dict"]
    b = read_checkpoint_file(second.last_checkpoint)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "augmentation on cpu (batched)" in caplog.text
    assert "training volumes" in caplog.text  # DeviceVolumes said where they are


def test_device_augmentation_trains_like_the_loader_path(
    preprocessed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same draws per sample: the first epoch's loss matches the workers' path up to interpolation rounding."""
    config = TrainConfig(**{**TINY, "epochs": 1})
    loader = train(preprocessed_dir, tmp_path / "loader", config, fold=0)
    _force_device_augmentation(monkeypatch)
    batched = train(preprocessed_dir, tmp_path / "batched", config, fold=0)
    assert loader.runtime is not None and loader.runtime.augment_device == "cpu"
    assert batched.history[0].train_loss == pytest.approx(loader.history[0].train_loss, rel=1e-3)


def test_config_yaml_and_checkpoint_state_what_ran(preprocessed_dir: Path, tmp_path: Path) -> None:
    """A forced precision (bf16 autocast on the CPU) is what config.yaml, the checkpoint and the result say."""
    config = TrainConfig(**{**TINY, "epochs": 1, "amp": True, "rotation_p": 0.0, "mirror_p": 0.0})
    result = train(preprocessed_dir, tmp_path, config, fold=0)
    runtime = result.runtime
    assert runtime is not None
    assert (runtime.device, runtime.precision, runtime.batch_size) == ("cpu", "bf16", 2)
    assert runtime.augment_device == "none" and runtime.tf32 is None and not runtime.grad_scaler
    assert runtime.hardware() == "CPU, batch 2, bf16 autocast"
    text = (result.fold_dir / "config.yaml").read_text(encoding="utf-8")
    assert "#   precision: bf16" in text and "#   device: cpu" in text and "#   batch_size: 2" in text
    # comments: still a config, the one that ran (loss: auto resolved for one output)
    assert load_yaml(TrainConfig, result.fold_dir / "config.yaml") == resolve_loss_defaults(config, 1)
    saved = read_checkpoint_file(result.best_checkpoint)["metadata"]["runtime"]
    assert saved["precision"] == "bf16" and saved["augment_device"] == "none"


@pytest.mark.gpu
def test_training_on_cuda_batches_on_the_gpu_and_says_so(preprocessed_dir: Path, tmp_path: Path) -> None:
    """On a real GPU the defaults train in fp16 with gradient scaling, augment there, and record it."""
    tiny = {k: v for k, v in TINY.items() if k not in ("device", "deterministic")}
    result = train(preprocessed_dir, tmp_path, TrainConfig(**tiny, device="cuda"), fold=0)
    runtime = result.runtime
    assert runtime is not None
    assert runtime.device.startswith("cuda") and (runtime.precision, runtime.grad_scaler) == ("fp16", True)
    assert runtime.augment_device.startswith("cuda") and runtime.tf32 is True
    assert all(math.isfinite(h.train_loss) and h.train_seconds <= h.seconds for h in result.history)
    text = (result.fold_dir / "config.yaml").read_text(encoding="utf-8")
    assert "#   device: cuda" in text and "#   precision: fp16" in text
