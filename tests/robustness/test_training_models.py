"""Hostile inputs for intensities, labels, training, checkpoints and export (issue 13, part A).

Every case is built here from small synthetic phantoms and asserts one of two outcomes:
a one-line error naming the file and the problem (exit code != 0, no traceback, no partial
output, the other patients still processed), or a correct result.

The DDP case (a rank that reaches ``train()`` after rank 0 wrote ``split.json``) lives in
``tests/training/test_distributed.py``, whose two processes it shares.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from hecktorseg.cli import app
from hecktorseg.config import to_dict
from hecktorseg.data.synthetic import SyntheticConfig, make_phantom, write_synthetic_dataset
from hecktorseg.errors import CheckpointError, ConfigError, DataError
from hecktorseg.models import SENormUNet, load_checkpoint, save_checkpoint
from hecktorseg.preprocessing import PreprocessConfig, check_intensities, preprocess_dataset, read_manifest

# 16³ voxels of 9 mm cover the 144 mm head-and-neck box: the smallest grid the network takes
GRID = ("--spacing", "9", "--size", "16")
PRE_CONFIG = PreprocessConfig(spacing=(9.0, 9.0, 9.0), size=(16, 16, 16))
TINY_TRAIN = (
    "--epochs", "1", "--n-filters", "2", "--num-workers", "0", "--device", "cpu",
    "--rotation-p", "0", "--mirror-p", "0", "--no-plot",
)  # fmt: skip


# -- helpers -----------------------------------------------------------------------------------------
def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_clean_error(result: Result, *needles: str) -> None:
    """Exit code != 0, no traceback, an ``error``/``failed`` line naming every needle."""
    text = result.output
    assert result.exit_code not in (0, None), text
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in text, text
    flat = " ".join(text.split())  # rich wraps long lines
    for needle in needles:
        assert " ".join(str(needle).split()) in flat, (needle, text)


def swap_files(a: Path, b: Path) -> None:
    tmp = a.with_name(".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)


@pytest.fixture(scope="module")
def raw_2020(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four tiny 2020-layout phantoms, one per centre (CHGJ001, CHMR002, CHUM003, CHUS004)."""
    root = tmp_path_factory.mktemp("robust-raw") / "raw"
    write_synthetic_dataset(root, n_cases=4, edition="2020", seed=0, config=SyntheticConfig.tiny())
    return root


@pytest.fixture(scope="module")
def pre_2020(raw_2020: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("robust-pre") / "pre"
    report = preprocess_dataset(raw_2020, out, PRE_CONFIG)
    assert report.ok, report.failed
    return out


@pytest.fixture
def raw(raw_2020: Path, tmp_path: Path) -> Path:
    """A private copy of the four phantoms (tests damage it)."""
    return Path(shutil.copytree(raw_2020, tmp_path / "raw"))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained SE-norm U-Net (4 filters) for the 16³ grid of 9 mm."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("robust-ckpt") / "tiny.pt"
    save_checkpoint(path, SENormUNet(n_filters=4, reduction=2), metadata={"preprocess": to_dict(PRE_CONFIG)})
    return path


def edited_checkpoint(src: Path, dest: Path, edit: Any) -> Path:
    raw = torch.load(src, weights_only=True)
    edit(raw)
    torch.save(raw, dest)
    return dest


# -- 2. CT and PET intensities -------------------------------------------------------------------------
def test_every_synthetic_phantom_passes_the_intensity_checks() -> None:
    tiny = SyntheticConfig.tiny()
    phantoms = [  # tiny ones of every centre and seed, with and without lymph nodes; two full-size
        (f"{centre}{i:03d}", seed, tiny, i % 2 == 0)
        for seed in (0, 1, 2)
        for i, centre in enumerate(("CHGJ", "CHMR", "CHUM", "CHUS", "CHUP", "MDA"))
    ] + [("CHGJ001", 0, SyntheticConfig(), False), ("CHUM-002", 1, SyntheticConfig(), True)]
    for pid, seed, config, nodes in phantoms:
        ph = make_phantom(pid, seed=seed, config=config, with_nodes=nodes)
        check_intensities(ph.ct, "ct")
        check_intensities(ph.pet, "pet")
        with pytest.raises(DataError, match="CT in Hounsfield"):
            check_intensities(ph.pet, "ct")
        with pytest.raises(DataError, match="PET in SUV"):
            check_intensities(ph.ct, "pet")


def test_intensity_check_thresholds_on_hand_made_arrays() -> None:
    air = np.full((10, 10, 10), 40.0, dtype=np.float32)
    air[0, 0, :2] = -1000.0  # 0.2 % air: a CT
    check_intensities(air, "ct")
    air[0, 0, 1] = 40.0  # 0.1 % is still enough
    check_intensities(air, "ct")
    air[0, 0, 0] = -400.0  # no voxel at or below -500 HU: not a CT
    with pytest.raises(DataError, match="no air"):
        check_intensities(air, "ct", path="x_ct.nii.gz", patient_id="P1")
    metal = np.full((10, 10, 10), -1000.0, dtype=np.float32)
    metal[5, 5, 5] = 60_000.0
    with pytest.raises(DataError, match="values up to 6e"):
        check_intensities(metal, "ct")
    pet = np.zeros((10, 10, 10), dtype=np.float32)
    pet[0, 0, 0] = -1000.0  # one odd voxel (0.1 %) is tolerated
    check_intensities(pet, "pet")
    pet[0, 0, 1] = -1000.0
    with pytest.raises(DataError, match="like the air of a CT"):
        check_intensities(pet, "pet")


def test_preprocess_fails_a_patient_with_swapped_ct_and_pet_and_finishes_the_others(
    raw: Path, tmp_path: Path
) -> None:
    folder = raw / "CHMR002"
    swap_files(folder / "CHMR002_ct.nii.gz", folder / "CHMR002_pt.nii.gz")
    out = tmp_path / "pre"
    result = invoke("preprocess", str(raw), str(out), *GRID)
    assert_clean_error(result, "CHMR002", str(folder / "CHMR002_ct.nii.gz"), "Hounsfield", "swapped")
    assert "3 done" in result.output
    assert sorted(read_manifest(out).entries) == ["CHGJ001", "CHUM003", "CHUS004"]
    assert not list(out.glob("CHMR002/*"))  # nothing partial


def test_preprocess_catches_a_dataset_json_with_swapped_channels(tmp_path: Path) -> None:
    raw = tmp_path / "nnunet"
    write_synthetic_dataset(raw, n_cases=2, edition="nnunet", seed=0, config=SyntheticConfig.tiny())
    meta = json.loads((raw / "dataset.json").read_text())
    meta["channel_names"] = {"0": "PT", "1": "CT"}
    (raw / "dataset.json").write_text(json.dumps(meta))
    out = tmp_path / "pre"
    result = invoke("preprocess", str(raw), str(out), *GRID)
    ct_file = raw / "imagesTr" / "CHGJ001_0001.nii.gz"  # what dataset.json now calls the CT
    assert_clean_error(result, str(ct_file), "Hounsfield", "dataset.json")
    assert "0 done" in result.output and "2 failed" in result.output
    assert not (out / "manifest.json").exists()
    # the switch for unusual data: the (wrong) order is then taken as given
    allowed = invoke("preprocess", str(raw), str(out), *GRID, "--allow-implausible-intensities")
    assert allowed.exit_code == 0, allowed.output
    assert sorted(read_manifest(out).entries) == ["CHGJ001", "CHMR002"]


def test_predict_fails_a_patient_with_swapped_ct_and_pet_and_predicts_the_others(
    raw: Path, checkpoint: Path, tmp_path: Path
) -> None:
    folder = raw / "CHUM003"
    swap_files(folder / "CHUM003_ct.nii.gz", folder / "CHUM003_pt.nii.gz")
    preds = tmp_path / "preds"
    result = invoke("predict", str(raw), str(preds), "--model", str(checkpoint), "--device", "cpu")
    assert_clean_error(result, "CHUM003", str(folder / "CHUM003_ct.nii.gz"), "Hounsfield")
    assert sorted(p.name for p in preds.glob("*.nii.gz")) == [
        "CHGJ001.nii.gz",
        "CHMR002.nii.gz",
        "CHUS004.nii.gz",
    ]
    allowed = invoke(
        "predict", str(raw), str(preds), "--model", str(checkpoint), "--device", "cpu",
        "--allow-implausible-intensities",
    )  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    assert (preds / "CHUM003.nii.gz").is_file()


# -- 3. checkpoints with broken weights or absurd sizes ------------------------------------------------
@pytest.fixture
def nan_checkpoint(checkpoint: Path, tmp_path: Path) -> Path:
    def poison(raw: dict[str, Any]) -> None:
        key = next(k for k, v in raw["state_dict"].items() if v.is_floating_point())
        raw["state_dict"][key] = torch.full_like(raw["state_dict"][key], float("nan"))

    return edited_checkpoint(checkpoint, tmp_path / "nan.pt", poison)


def test_a_checkpoint_with_nan_weights_is_refused_on_load(nan_checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match="NaN or infinite") as info:
        load_checkpoint(nan_checkpoint)
    assert info.value.path == nan_checkpoint


def test_predict_with_nan_weights_fails_and_writes_no_mask(
    nan_checkpoint: Path, raw: Path, tmp_path: Path
) -> None:
    preds = tmp_path / "preds"
    result = invoke("predict", str(raw), str(preds), "--model", str(nan_checkpoint), "--device", "cpu")
    assert_clean_error(result, str(nan_checkpoint), "NaN")
    assert not list(preds.rglob("*.nii*"))


@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_export_of_nan_weights_fails_and_leaves_no_file(
    nan_checkpoint: Path, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"model{suffix}"
    result = invoke("export", str(nan_checkpoint), str(out))
    assert_clean_error(result, str(nan_checkpoint), "NaN")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".model", "model"))]


def test_predictor_refuses_non_finite_probabilities_naming_the_model() -> None:
    from hecktorseg.inference import Predictor

    class Broken(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1] * float("nan")

    predictor = Predictor([Broken()], preprocess=PRE_CONFIG, device="cpu", model_names=["broken.pt"])
    with pytest.raises(CheckpointError, match=r"broken\.pt: the model produced .* non-finite"):
        predictor.predict_array(np.zeros((2, 16, 16, 16), dtype=np.float32))


def test_a_declared_size_far_from_the_weights_fails_before_allocating(
    checkpoint: Path, tmp_path: Path
) -> None:
    def huge(raw: dict[str, Any]) -> None:
        raw["model"]["kwargs"]["n_filters"] = 1_000_000

    def other(raw: dict[str, Any]) -> None:
        raw["model"]["kwargs"]["n_filters"] = 8

    with pytest.raises(CheckpointError, match="parameters, more than the limit") as info:
        load_checkpoint(edited_checkpoint(checkpoint, tmp_path / "huge.pt", huge))
    assert info.value.path == tmp_path / "huge.pt"
    with pytest.raises(
        CheckpointError, match=r"has shape \(4, 2, 7, 7, 7\), the model expects \(8, 2, 7, 7, 7\)"
    ):
        load_checkpoint(edited_checkpoint(checkpoint, tmp_path / "other.pt", other))
    result = invoke("export", str(tmp_path / "huge.pt"), str(tmp_path / "huge.onnx"))
    assert_clean_error(result, str(tmp_path / "huge.pt"), "n_filters=1000000")
    assert not (tmp_path / "huge.onnx").exists()


def test_train_refuses_an_absurd_model_size_before_writing(pre_2020: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = invoke("train", str(pre_2020), str(runs), *TINY_TRAIN, "--n-filters", "1000000")
    assert_clean_error(result, "n_filters=1000000", "parameters")
    assert not runs.exists()


def test_a_model_that_cannot_be_built_on_the_meta_device_still_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hecktorseg.models import build_model, probe_model, register_model, registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # registered for this test only

    @register_model("robustness_reads_values")
    class ReadsValues(torch.nn.Module):
        def __init__(self, in_channels: int = 2, n_classes: int = 1) -> None:
            super().__init__()
            self.conv = torch.nn.Conv3d(in_channels, n_classes, 1)
            self.scale = float(self.conv.weight.abs().sum().item())  # impossible on "meta"

        @property
        def hparams(self) -> dict[str, int]:
            return {"in_channels": self.conv.in_channels, "n_classes": self.conv.out_channels}

    assert probe_model("robustness_reads_values") is None
    model = build_model("robustness_reads_values")
    save_checkpoint(tmp_path / "custom.pt", model)
    loaded = load_checkpoint(tmp_path / "custom.pt")
    assert torch.equal(loaded.model.state_dict()["conv.weight"], model.state_dict()["conv.weight"])


# -- 4. a labelled dataset with one label missing ------------------------------------------------------
def test_a_missing_label_fails_that_patient_unless_allowed_and_train_says_who_is_left_out(
    raw: Path, tmp_path: Path
) -> None:
    label = raw / "CHUS004" / "CHUS004_ct_gtvt.nii.gz"
    label.rename(raw / "CHUS004" / "CHUS004_gtv.nii.gz")  # misnamed
    out = tmp_path / "pre"
    result = invoke("preprocess", str(raw), str(out), *GRID)
    assert_clean_error(result, "CHUS004", str(label), "label map not found", "--allow-missing-labels")
    assert "3 done" in result.output
    assert sorted(read_manifest(out).entries) == ["CHGJ001", "CHMR002", "CHUM003"]

    allowed = invoke("preprocess", str(raw), str(out), *GRID, "--allow-missing-labels")
    assert allowed.exit_code == 0, allowed.output
    entries = read_manifest(out).entries
    assert entries["CHUS004"].label_path is None and entries["CHGJ001"].label_path is not None

    trained = invoke("train", str(out), str(tmp_path / "runs"), *TINY_TRAIN, "--split", "centre")
    assert trained.exit_code == 0, trained.output
    flat = " ".join(trained.output.split())
    assert "fold 0 (validation centre CHGJ): 2 training / 1 validation cases" in flat
    assert "1 case(s) of" in flat and "left out: CHUS004 (no label map)" in flat


def test_left_out_cases_names_the_reason() -> None:
    from types import SimpleNamespace

    from hecktorseg.training import Split
    from hecktorseg.training.splits import left_out_cases

    entries = {
        "A1": SimpleNamespace(label_path=Path("a")),
        "B2": SimpleNamespace(label_path=Path("b")),
        "C3": SimpleNamespace(label_path=None),
        "D4": SimpleNamespace(label_path=Path("d")),
    }
    split = Split(0, ("A1",), ("B2",), "file")
    assert left_out_cases(entries, split) == {"C3": "no label map", "D4": "not in this fold of the split"}


# -- 9. failed runs, split files, grid sizes, messages ------------------------------------------------
def test_a_train_that_failed_before_its_first_epoch_does_not_block_the_rerun(
    pre_2020: Path, tmp_path: Path
) -> None:
    data = Path(shutil.copytree(pre_2020, tmp_path / "pre"))
    ct = data / "CHMR002" / "CHMR002_ct.nii.gz"
    good = ct.read_bytes()
    ct.write_bytes(good[: len(good) // 2])  # truncated: training stops while loading
    runs = tmp_path / "runs"
    args = ("train", str(data), str(runs), *TINY_TRAIN, "--split", "random", "--n-folds", "2")
    failed = invoke(*args)
    assert_clean_error(failed, str(ct))
    fold = runs / "fold_0"
    assert (fold / "split.json").is_file() and not (fold / "last.pt").exists()
    ct.write_bytes(good)
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert (fold / "last.pt").is_file() and (fold / "config.yaml").is_file()
    # a run that did train is protected as before
    third = invoke(*args)
    assert_clean_error(third, "results already exist", "last.pt")


def test_a_duplicate_id_in_a_split_file_is_an_error_naming_the_file(pre_2020: Path, tmp_path: Path) -> None:
    split = tmp_path / "split.json"
    split.write_text(
        json.dumps({"folds": [{"train": ["CHGJ001", "CHMR002", "CHGJ001"], "val": ["CHUM003"]}]})
    )
    runs = tmp_path / "runs"
    result = invoke(
        "train", str(pre_2020), str(runs), *TINY_TRAIN, "--split", "file", "--split-file", str(split)
    )
    assert_clean_error(result, str(split), "folds[0].train", "CHGJ001", "more than once")
    assert not runs.exists()
    from hecktorseg.training import load_split_file

    split.write_text(json.dumps({"val": ["CHUM003", "CHUM003"]}))
    with pytest.raises(ConfigError, match=r"folds\[0\]\.val: patient id\(s\) listed more than once: CHUM003"):
        load_split_file(split, ["CHGJ001", "CHMR002", "CHUM003"])


@pytest.mark.parametrize("size", ["33", "24", "16,16,8"])
def test_preprocess_refuses_grid_sides_that_are_not_multiples_of_16(
    raw_2020: Path, tmp_path: Path, size: str
) -> None:
    out = tmp_path / "pre"
    result = invoke("preprocess", str(raw_2020), str(out), "--spacing", "9", "--size", size)
    assert_clean_error(result, "multiple of 16")
    assert not out.exists()
    with pytest.raises(ConfigError, match="multiple of 16"):
        preprocess_dataset(raw_2020, out, PreprocessConfig(size=(33, 33, 33)))
    assert not out.exists()


@pytest.mark.parametrize(("value", "shown"), [("nan", "[nan, nan, nan]"), ("1,nan,1", "[1.0, nan, 1.0]")])
def test_a_nan_spacing_is_shown_in_the_message(
    raw_2020: Path, tmp_path: Path, value: str, shown: str
) -> None:
    result = invoke("preprocess", str(raw_2020), str(tmp_path / "pre"), "--spacing", value)
    assert_clean_error(result, f"spacing: every value must be positive, got {shown}")
