"""TrainConfig: the defaults, the paper preset, strict loading with errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hecktorseg.config import from_dict, load_yaml, merge, to_dict
from hecktorseg.errors import ConfigError
from hecktorseg.training import TrainConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_paper.yaml"


def test_defaults_keep_the_papers_optimisation() -> None:
    c = TrainConfig()
    assert (c.model, c.n_filters, c.reduction, c.n_classes) == (
        "senorm_unet",
        24,
        2,
        None,
    )  # None: from the dataset (1 for GTVt)
    assert (c.epochs, c.batch_size, c.lr, c.betas, c.weight_decay) == (300, 1, 1e-3, (0.9, 0.99), 0.0)
    assert (c.scheduler, c.t_0, c.t_mult, c.eta_min) == ("cosine_warm_restarts", 25, 1, 1e-5)
    assert c.loss == "auto" and c.dice_skip_absent is None and c.threshold == 0.5  # by the outputs
    assert TrainConfig.paper().loss == "dice_focal" and TrainConfig.paper().dice_skip_absent is False
    assert (c.rotation_p, c.max_angle, c.rotation_axes, c.mirror_p) == (0.5, 44.0, (1, 3), 0.5)
    assert c.scale_p == 0.0  # extras off by default
    # hecktorseg's departures (the paper preset undoes them)
    assert c.amp is None and c.split == "centre"
    assert (c.rotation_mode, c.rotation_fill, c.mirror_axes) == ("composed", None, (1, 3))


def test_every_field_has_help() -> None:
    import attrs

    for field in attrs.fields(TrainConfig):
        assert field.metadata.get("help"), field.name


def test_example_yaml_is_the_paper_preset_and_documents_every_field() -> None:
    loaded = load_yaml(TrainConfig, EXAMPLE, section="train")
    assert loaded == TrainConfig.paper()
    text = EXAMPLE.read_text()
    for line in text.splitlines():
        if line.startswith("  ") and ":" in line and not line.strip().startswith("#"):
            assert "#" in line, f"undocumented field line: {line!r}"


def test_round_trip_through_dict() -> None:
    config = TrainConfig(n_filters=8, amp=True, split="random", fold=3, betas=(0.8, 0.9))
    assert from_dict(TrainConfig, to_dict(config)) == config


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"lr": "fast"}, "lr"),
        ({"epochs": "many"}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"amp": "yes"}, "amp"),
        ({"device": "tpu"}, "device"),
        ({"betas": [0.9]}, "betas"),
        ({"rotation_axes": [0, 4]}, "rotation_axes"),
        ({"mirror_p": 1.5}, "mirror_p"),
        ({"split": "file"}, "split_file"),
        ({"split": "random", "n_folds": 4, "fold": 4}, "fold"),
    ],
)
def test_bad_values_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        from_dict(TrainConfig, data, where="train")


def test_merge_ignores_unset_flags() -> None:
    config = merge(TrainConfig(), {"epochs": 5, "lr": None})
    assert config.epochs == 5 and config.lr == 1e-3


def test_yaml_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: 3\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(TrainConfig, path, section="train")
    assert "learning_rate" in str(info.value) and "bad.yaml" in str(info.value)
