"""The strict attrs ↔ dict ↔ YAML configuration machinery."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs
import pytest

from hecktorseg.config import from_dict, load_yaml, merge, resolve_config, save_yaml, to_dict
from hecktorseg.errors import ConfigError


@attrs.frozen
class Inner:
    a: int = attrs.field(default=1, metadata={"help": "an int"})


@attrs.frozen
class Sample:
    spacing: tuple[float, float, float] = attrs.field(default=(1.0, 1.0, 1.0), metadata={"help": "mm"})
    mode: Literal["linear", "bspline"] = attrs.field(default="linear", metadata={"help": "interp"})
    amp: bool | None = attrs.field(default=None, metadata={"help": "mixed precision"})
    lr: float = attrs.field(default=1e-3, metadata={"help": "learning rate"})
    names: tuple[str, ...] = attrs.field(default=(), metadata={"help": "names"})
    inner: Inner = attrs.field(factory=Inner, metadata={"help": "nested"})


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    cfg = Sample(spacing=(2.0, 2.0, 3.0), mode="bspline", amp=True, lr=0.5, names=("a", "b"), inner=Inner(7))
    save_yaml(cfg, tmp_path / "c.yaml")
    assert load_yaml(Sample, tmp_path / "c.yaml") == cfg
    assert to_dict(cfg)["inner"] == {"a": 7}


def test_ints_become_floats_and_lists_tuples() -> None:
    cfg = from_dict(Sample, {"spacing": [1, 2, 3], "lr": 1})
    assert cfg.spacing == (1.0, 2.0, 3.0)
    assert isinstance(cfg.lr, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"spacinf": [1, 1, 1]}, "unknown field.*'spacinf'"),
        ({"lr": "fast"}, r"cfg\.lr: expected a number"),
        ({"mode": "cubic"}, r"cfg\.mode: expected one of 'linear', 'bspline'"),
        ({"spacing": [1, 1]}, r"cfg\.spacing: expected a list of 3 values"),
        ({"amp": "yes"}, r"cfg\.amp: expected true or false or null"),
        ({"inner": {"b": 1}}, r"cfg\.inner: unknown field"),
    ],
)
def test_errors_name_the_field(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(Sample, data, where="cfg")


def test_merge_ignores_unset_overrides() -> None:
    base = Sample(lr=0.1)
    assert merge(base, {"lr": None, "amp": None}) is base
    assert merge(base, {"amp": False}).amp is False


def test_yaml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(Sample, bad)
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(Sample, tmp_path / "nope.yaml")
    unsafe = tmp_path / "unsafe.yaml"
    unsafe.write_text("lr: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(Sample, unsafe)


def test_resolve_config_precedence_preset_then_yaml_then_overrides(tmp_path: Path) -> None:
    presets = {"paper": lambda: Sample(lr=0.5, mode="bspline", amp=True), "default": Sample}
    path = tmp_path / "c.yaml"
    path.write_text("stage:\n  lr: 0.25\n  names: [a]\n", encoding="utf-8")
    # preset only
    assert resolve_config(Sample, preset="paper", presets=presets) == Sample(lr=0.5, mode="bspline", amp=True)
    # the YAML overrides the preset's lr, keeps its other fields; the overrides win over both
    got = resolve_config(
        Sample,
        preset="paper",
        presets=presets,
        yaml=path,
        section="stage",
        overrides={"mode": "linear", "amp": None},
    )
    assert got == Sample(lr=0.25, mode="linear", amp=True, names=("a",))
    # no preset: base, else the class defaults
    assert resolve_config(Sample, base=Sample(lr=2.0)) == Sample(lr=2.0)
    assert resolve_config(Sample, yaml=path, section="stage") == Sample(lr=0.25, names=("a",))
    with pytest.raises(ConfigError, match="unknown preset 'fast'") as info:
        resolve_config(Sample, preset="fast", presets=presets)
    assert info.value.hint == "use preset=paper or preset=default"
    with pytest.raises(ConfigError, match="lr"):
        resolve_config(Sample, overrides={"lr": "fast"}, where="command line")
