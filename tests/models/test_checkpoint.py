"""Checkpoints: our format round trip, original state dicts, and rejection of bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from hecktorseg.errors import CheckpointError, ConfigError
from hecktorseg.models import (
    BaselineUNet,
    SENormUNet,
    load_checkpoint,
    load_original_checkpoint,
    save_checkpoint,
)


def original_layout(n_filters: int = 4, reduction: int = 2, n_classes: int = 1) -> dict[str, tuple[int, ...]]:
    """Keys -> shapes of an original checkpoint, from our key-naming code (checked in the architecture tests)."""
    with torch.device("meta"):
        model = SENormUNet(n_filters=n_filters, reduction=reduction, n_classes=n_classes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("prefix", ["", "module."])
def test_original_checkpoint_loads(tmp_path: Path, prefix: str, random_state_dict) -> None:
    """Loading and inference of hyper-parameters; the function computed (axis order) is tested
    against the original convention in test_checkpoint_original.py."""
    state = random_state_dict(original_layout(), seed=7)
    path = tmp_path / "original.pth"
    torch.save({prefix + k: v for k, v in state.items()}, path)

    model = load_original_checkpoint(path)
    assert isinstance(model, SENormUNet)
    assert model.hparams == {"in_channels": 2, "n_classes": 1, "n_filters": 4, "reduction": 2}
    assert not model.training


def test_original_hyperparameters_are_inferred(tmp_path: Path, random_state_dict) -> None:
    state = random_state_dict(original_layout(n_filters=8, reduction=4, n_classes=3))
    path = tmp_path / "multi.pt"
    torch.save(state, path)
    loaded = load_checkpoint(path)
    assert loaded.kind == "original"
    assert loaded.metadata == {
        "source": "original",
        "in_channels": 2,
        "n_classes": 3,
        "n_filters": 8,
        "reduction": 4,
    }
    assert isinstance(loaded.model, SENormUNet)


def test_our_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SENormUNet(n_filters=4, n_classes=2)
    metadata = {
        "preprocess": {"spacing": [1.0, 1.0, 1.0], "size": [144, 144, 144]},
        "epoch": 3,
        "out": tmp_path,
    }
    path = save_checkpoint(
        tmp_path / "sub" / "best.pt", model, metadata=metadata, extra={"optimizer": {"lr": 1e-3}}
    )
    assert path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp file left

    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "hecktorseg" and raw["format_version"] == 1
    assert raw["model"] == {"name": "senorm_unet", "kwargs": model.hparams}
    assert raw["optimizer"] == {"lr": 1e-3}

    loaded = load_checkpoint(path)
    assert loaded.kind == "hecktorseg"
    assert loaded.metadata["preprocess"]["size"] == [144, 144, 144]
    assert loaded.metadata["out"] == os.fspath(tmp_path)  # paths stored as text
    x = torch.randn(1, 2, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model.eval()(x))
    assert load_checkpoint(path).kind == "hecktorseg"


def test_baseline_round_trip(tmp_path: Path) -> None:
    """The loaded baseline computes what the saved one computed: same weights, same outputs."""
    torch.manual_seed(1)
    model = BaselineUNet(n_filters=4).eval()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "b.pt", model))
    assert type(loaded.model) is BaselineUNet
    saved, restored = model.state_dict(), loaded.model.state_dict()
    assert saved.keys() == restored.keys()
    assert all(torch.equal(saved[k], restored[k]) for k in saved)
    x = torch.randn(1, 2, 16, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(x)
        got = loaded.model(x)
        fresh = BaselineUNet(n_filters=4).eval()(x)  # another initialisation: the check can fail
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert not torch.allclose(fresh, expected)


def test_save_rejects_values_weights_only_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"metadata\.bad"):
        save_checkpoint(tmp_path / "x.pt", SENormUNet(n_filters=4), metadata={"bad": object()})
    with pytest.raises(ConfigError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", SENormUNet(n_filters=4), extra={"state_dict": {}})
    assert not (tmp_path / "x.pt").exists()


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"block_1_1_left.conv1.conv.weight": _Payload()}, path)
    for loader in (load_checkpoint, load_original_checkpoint):
        with pytest.raises(CheckpointError, match="refused"):
            loader(path)


@pytest.mark.parametrize(
    "case", ["truncated", "text", "missing", "tensor", "baseline", "shape", "ours-as-wrong"]
)
def test_bad_files_give_clear_errors(tmp_path: Path, case: str, random_state_dict) -> None:
    path = tmp_path / "bad.pt"
    if case == "truncated":
        save_checkpoint(path, SENormUNet(n_filters=4))
        path.write_bytes(path.read_bytes()[:2000])
    elif case == "text":
        path.write_text("not a checkpoint\n")
    elif case == "missing":
        path = tmp_path / "nope.pt"
    elif case == "tensor":
        torch.save(torch.zeros(3), path)
    elif case == "baseline":
        torch.save(BaselineUNet(n_filters=4).state_dict(), path)
    elif case == "shape":
        state = random_state_dict(original_layout())
        state["block_2_1_left.conv1.conv.weight"] = torch.zeros(8, 4, 3, 3, 3, 2)
        torch.save(state, path)
    elif case == "ours-as-wrong":
        state = random_state_dict(original_layout())
        del state["vision_3.conv.conv.bias"]
        torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_load_checkpoint_reads_original_files_as_load_original_checkpoint(
    tmp_path: Path, random_state_dict
) -> None:
    """The one user-facing loader recognises the authors' state dicts too, with the same weights."""
    path = tmp_path / "orig.pt"
    torch.save(random_state_dict(original_layout()), path)
    loaded = load_checkpoint(path)
    bare = load_original_checkpoint(path)
    assert loaded.kind == "original"
    ours, theirs = loaded.model.state_dict(), bare.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
