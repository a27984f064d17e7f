"""PreprocessedDataset: network input equals the shared stack_channels, seeded augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler

from hecktorseg.data import (
    Compose,
    EpochTaggedSampler,
    PreprocessedDataset,
    RandomMirror,
    RandomRotation,
    sample_seed,
)
from hecktorseg.errors import DataError
from hecktorseg.io import image_to_array, read_image
from hecktorseg.preprocessing import pet_fov_mask, read_manifest, stack_channels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hecktorseg.data.synthetic import write_synthetic_dataset
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_dataset

    root = tmp_path_factory.mktemp("dataset")
    write_synthetic_dataset(root / "raw", n_cases=3, seed=1)
    report = preprocess_dataset(
        root / "raw", root / "pre", PreprocessConfig(spacing=(4.5, 4.5, 4.5), size=(32, 32, 32))
    )
    assert not report.failed
    return root / "pre"


def test_items_match_the_shared_normalisation(data_dir: Path) -> None:
    dataset = PreprocessedDataset(data_dir)
    manifest = read_manifest(data_dir)
    assert len(dataset) == 3
    assert dataset.patient_ids == sorted(manifest.entries)
    item = dataset[1]
    entry = manifest.entries[item["patient_id"]]
    assert item["image"].shape == (2, 32, 32, 32) and item["image"].dtype == torch.float32
    assert item["label"].shape == (1, 32, 32, 32) and item["label"].dtype == torch.float32
    ct = image_to_array(read_image(entry.ct_path, kind="ct"))
    pet = image_to_array(read_image(entry.pet_path, kind="pet"))
    expected = stack_channels(
        ct, pet, manifest.config, pet_fov=pet_fov_mask(entry.pet_geometry, entry.reference)
    )
    np.testing.assert_array_equal(item["image"].numpy(), expected)
    label = image_to_array(read_image(entry.label_path, kind="label"))
    np.testing.assert_array_equal(item["label"][0].numpy(), label.astype(np.float32))
    assert item["label"].sum() > 0


def test_cache_off_gives_the_same_items(data_dir: Path) -> None:
    cached = PreprocessedDataset(data_dir, cache=True)
    lazy = PreprocessedDataset(data_dir, cache=False)
    for i in range(len(cached)):
        assert torch.equal(cached[i]["image"], lazy[i]["image"])


def test_augmentation_is_seeded_by_seed_epoch_and_index(data_dir: Path) -> None:
    transform = Compose([RandomRotation(p=1.0), RandomMirror(p=1.0)])
    dataset = PreprocessedDataset(data_dir, transform=transform, seed=7)
    a = dataset[(3, 0)]
    b = dataset[(3, 0)]
    c = dataset[(4, 0)]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(a["image"], c["image"])
    dataset.set_epoch(3)
    assert torch.equal(dataset[0]["image"], a["image"])
    assert set(torch.unique(a["label"]).tolist()) <= {0.0, 1.0}
    # normalised CT stays within [-1, 1]: the rotated-in area is air (-1), not water (0)
    assert a["image"][0].min() >= -1.0 and a["image"][0].max() <= 1.0
    assert sample_seed(7, 3, 0) != sample_seed(7, 3, 1) != sample_seed(8, 3, 0)


def test_loader_workers_do_not_change_the_augmentation(data_dir: Path) -> None:
    transform = RandomRotation(p=1.0)
    dataset = PreprocessedDataset(data_dir, transform=transform, seed=0)
    results = []
    for workers in (0, 2):
        sampler = EpochTaggedSampler(SequentialSampler(dataset))
        sampler.set_epoch(5)
        loader = DataLoader(dataset, batch_size=1, sampler=sampler, num_workers=workers)
        results.append(torch.cat([batch["image"] for batch in loader]))
    assert torch.equal(results[0], results[1])


def test_bad_inputs_raise_data_errors(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not in the manifest"):
        PreprocessedDataset(data_dir, ["NOPE001"])
    with pytest.raises(DataError):
        PreprocessedDataset(tmp_path)
