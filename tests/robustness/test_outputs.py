"""Outputs of earlier runs and what a run predicts with (issue 23's second corpus, findings 14, 15)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from robust_helpers import invoke, write_tiny_dataset


def test_a_checkpoint_without_recorded_preprocessing_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No metadata.preprocess: the 1 mm / 144³ defaults used to be taken silently (finding 14)."""
    import torch

    from hecktorseg.inference import Predictor
    from hecktorseg.models import build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "bare.pt"
    save_checkpoint(path, build_model("senorm_unet", n_filters=2))
    with caplog.at_level("WARNING"):
        Predictor.from_checkpoints([path], device="cpu", backend="torch")
    assert "records no preprocessing" in caplog.text and str(path) in caplog.text


def test_synth_force_removes_another_editions_tables(tmp_path: Path) -> None:
    """2026 over a 2025 folder left HECKTOR_2025_Training_Task_1.csv: detected as 2025 (finding 15)."""
    from hecktorseg.io import detect_layout

    root = tmp_path / "S"
    code, output = invoke(["synth", root, "--tiny", "--cases", "2", "--edition", "2025"])
    assert code == 0, output
    old_tables = {p.name for p in root.glob("*.csv")}
    assert old_tables, "the 2025 phantoms write a clinical table"
    code, output = invoke(["synth", root, "--tiny", "--cases", "2", "--edition", "2026", "--force"])
    assert code == 0, output
    assert detect_layout(root).value == "2026"
    assert not {p.name for p in root.glob("*2025*")}


def test_ranking_force_removes_the_old_runs_it_wrote_only(tmp_path: Path) -> None:
    """Ranking again with --force left the old per-run folders beside the new ranking.csv (finding 15)."""
    from hecktorseg.io import discover_cases

    truth = tmp_path / "truth"
    write_tiny_dataset(truth, 2, edition="2025")
    runs = {}
    for name in ("runA", "runB", "runC"):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        for case in discover_cases(truth):
            assert case.label_path is not None
            shutil.copyfile(case.label_path, runs[name] / f"{case.patient_id}.nii.gz")
    out = tmp_path / "out"
    code, output = invoke(["evaluate", runs["runA"], truth, out, "-e", "2025", "--predictions", runs["runB"]])
    assert code == 0, output
    (out / "runB" / "notes.txt").write_text("mine")
    code, output = invoke(
        ["evaluate", runs["runC"], truth, out, "-e", "2025", "--predictions", runs["runA"], "--force"]
    )
    assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["ranking.csv", "runA", "runB", "runC"]
    assert sorted(p.name for p in (out / "runB").iterdir()) == ["notes.txt"]  # the user's file stays
    (out / "runB" / "notes.txt").unlink()
    (out / "runB").rmdir()
    code, output = invoke(["evaluate", runs["runA"], truth, out, "-e", "2025", "--force"])
    assert code == 0, output
