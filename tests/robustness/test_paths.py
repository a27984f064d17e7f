"""Output paths that cannot be written, bad config files, bad export arguments, malicious files.

Every subcommand must answer an unwritable output path (an existing file where a
folder is expected, a folder below a file, ``/proc``, a read-only folder) with one
line naming the path and the fix, and exit 1 — never a traceback.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from robust_helpers import assert_clean_error, invoke

TRAIN_QUICK = [
    "--n-filters", "2", "--epochs", "1", "--split", "random", "--n-folds", "3", "--num-workers", "0",
    "--device", "cpu", "--max-train-batches-per-epoch", "1", "--max-val-batches", "1", "--no-plot",
]  # fmt: skip

COMMANDS = ("synth", "preprocess", "train", "predict", "evaluate", "visualize", "export", "demo")
KINDS = ("existing-file", "below-a-file", "proc", "read-only")


@pytest.fixture(scope="module")
def inputs(raw_dataset: Path, preprocessed: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The inputs of every command, and a prediction folder (the ground truth itself)."""
    preds = tmp_path_factory.mktemp("robust-preds")
    for label in raw_dataset.glob("*/*_ct_gtvt.nii.gz"):
        shutil.copy(label, preds / label.name.replace("_ct_gtvt", ""))
    return {"raw": raw_dataset, "pre": preprocessed, "ckpt": checkpoint, "preds": preds}


def _args(command: str, out: Path, inputs: dict[str, Path]) -> list[str | os.PathLike[str]]:
    small = ["--size", "16", "--spacing", "9"]
    return {
        "synth": ["synth", out, "-n", "1", "--tiny"],
        "preprocess": ["preprocess", inputs["raw"], out, *small],
        "train": ["train", inputs["pre"], out, *TRAIN_QUICK],
        "predict": ["predict", inputs["raw"], out, "-m", inputs["ckpt"], "--device", "cpu"],
        "evaluate": ["evaluate", inputs["preds"], inputs["raw"], out, "-e", "2020"],
        "visualize": ["visualize", inputs["raw"], out],
        "export": ["export", inputs["ckpt"], out / "model.pt", "--no-verify"],
        "demo": ["demo", out],
    }[command]


def _bad_output(kind: str, tmp_path: Path) -> tuple[Path, str, Callable[[], None]]:
    """(output folder, word the message must hold, check that nothing was changed)."""
    if kind == "existing-file":
        blocker = tmp_path / "taken"
        blocker.write_text("precious\n")
        return blocker, "is a file", lambda: _unchanged(blocker)
    if kind == "below-a-file":
        blocker = tmp_path / "taken"
        blocker.write_text("precious\n")
        return blocker / "out", "is a file", lambda: _unchanged(blocker)
    if kind == "proc":
        return Path("/proc/hecktorseg-robustness/out"), "cannot create", lambda: None
    if os.geteuid() == 0:
        pytest.skip("root may write into read-only folders")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro / "out", "permission denied", lambda: _empty(ro)


def _unchanged(blocker: Path) -> None:
    assert blocker.read_text() == "precious\n"


def _empty(folder: Path) -> None:
    assert not list(folder.iterdir())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", COMMANDS)
def test_unwritable_output(command: str, kind: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    out, word, nothing_changed = _bad_output(kind, tmp_path)
    code, output = invoke(_args(command, out, inputs))
    shown = out.parent if kind == "read-only" or (command == "export" and kind == "existing-file") else out
    line = assert_clean_error(code, output, "error:", word)
    assert str(shown) in line or str(out) in line, line
    nothing_changed()


def test_export_onto_a_folder(inputs: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.mkdir()
    code, output = invoke(["export", inputs["ckpt"], target, "--force", "--no-verify"])
    assert_clean_error(code, output, str(target), "folder")
    assert target.is_dir() and not list(target.iterdir())


# -- configuration files ------------------------------------------------------------------------------
CONFIG_COMMANDS = {
    "synth": lambda out, i: ["synth", out, "-n", "1", "--tiny"],
    "preprocess": lambda out, i: ["preprocess", i["raw"], out],
    "train": lambda out, i: ["train", i["pre"], out],
}


def _config(kind: str, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "config.yaml"
    if kind == "not-utf8":
        path.write_bytes(b"size: [16, 16, 16]\nname: \xff\xfe\xfa\n")
        return path, "utf-8"
    if kind == "folder":
        path.mkdir()
        return path, "folder"
    if kind == "python-tag":  # must not run: it would create the marker file
        marker = tmp_path / "pwned"
        path.write_text(f'seed: !!python/object/apply:builtins.open ["{marker}", "w"]\n')
        return path, "yaml"
    path.write_text("a: [1, 2\n")
    return path, "yaml"


@pytest.mark.parametrize("kind", ["not-utf8", "folder", "python-tag", "broken"])
@pytest.mark.parametrize("command", list(CONFIG_COMMANDS))
def test_bad_config_file(command: str, kind: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    config, word = _config(kind, tmp_path)
    out = tmp_path / "out"
    code, output = invoke([*CONFIG_COMMANDS[command](out, inputs), "--config", config])
    assert_clean_error(code, output, "error:", str(config), word)
    assert not (tmp_path / "pwned").exists()
    assert not out.exists() or not any(out.rglob("*.nii.gz"))


# -- export arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "word"),
    [
        ("0,2,32,32,32", "out of range"),
        ("-1,2,32,32,32", "out of range"),
        ("1,2,99984,99984,16", "out of range"),
        ("1,2,33,32,32", "multiples of 16"),
        ("1,3,32,32,32", "channels"),
        ("1,2,32,32", "5 integers"),
        ("1,2,a,32,32", "integers"),
    ],
)
def test_bad_export_shape(shape: str, word: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    code, output = invoke(["export", inputs["ckpt"], out, "--shape", shape, "--no-verify"])
    assert_clean_error(code, output, "error:", word)
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["folder", "dev-zero", "missing", "suffix"])
def test_bad_export_paths(kind: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    ckpt, out = inputs["ckpt"], tmp_path / "m.pt"
    if kind == "folder":
        ckpt = tmp_path / "ckpt"
        ckpt.mkdir()
    elif kind == "dev-zero":
        ckpt = tmp_path / "zero.pt"
        ckpt.symlink_to("/dev/zero")
    elif kind == "missing":
        ckpt = tmp_path / "missing.pt"
    else:
        out = tmp_path / "m.txt"
    code, output = invoke(["export", ckpt, out, "--no-verify"])
    word = {"folder": "folder", "dev-zero": "not a regular file", "missing": "not found", "suffix": "format"}
    assert_clean_error(code, output, "error:", word[kind])
    assert not out.exists()


# -- malicious pickles ----------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates a marker file: proof that the payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("command", ["predict", "export"])
def test_malicious_checkpoint_is_refused(command: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": _Payload(marker)}, "metadata": {}}, evil)
    args = {
        "predict": ["predict", inputs["raw"], tmp_path / "out", "-m", evil, "--device", "cpu"],
        "export": ["export", evil, tmp_path / "m.pt", "--no-verify"],
    }[command]
    code, output = invoke(args)
    assert_clean_error(code, output, "error:", str(evil), "refused")
    assert not marker.exists()
    assert not (tmp_path / "m.pt").exists() and not (tmp_path / "out").exists()
