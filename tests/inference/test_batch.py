"""predict_dataset and ``hecktorseg predict``: files on the CT grid, atomic, skip/overwrite, parts, failures."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.config import to_dict
from hecktorseg.errors import ConfigError
from hecktorseg.inference import PROBABILITY_DIR, UNCERTAINTY_DIR, Predictor, predict_dataset
from hecktorseg.io import Case
from hecktorseg.models import build_model, save_checkpoint


@pytest.fixture
def predictor(toys: SimpleNamespace) -> Predictor:
    return Predictor(
        [toys.CTThreshold()], preprocess=toys.SMALL_CONFIG, device="cpu", backend="torch", precision="fp32"
    )


def _same_grid(a: sitk.Image, b: sitk.Image) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=1e-6)


def test_outputs_on_the_ct_grid_and_skip_overwrite(
    dataset_2021: tuple[Path, Path, list[Case]], predictor: Predictor, tmp_path: Path
) -> None:
    root, table, cases = dataset_2021
    out = tmp_path / "pred"
    seen: list[tuple[int, int, str]] = []
    report = predict_dataset(
        root,
        out,
        predictor,
        bbox_table=table,
        save_probabilities=True,
        save_uncertainty=True,
        progress=lambda done, total, pid: seen.append((done, total, pid)),
    )
    assert report.ok and report.done == tuple(c.patient_id for c in cases) and not report.skipped
    assert [s[0] for s in seen] == [1, 2, 3] and all(s[1] == 3 for s in seen)
    for case in cases:
        ct = sitk.ReadImage(str(case.ct_path))
        mask = sitk.ReadImage(str(out / f"{case.patient_id}.nii.gz"))
        assert mask.GetPixelID() == sitk.sitkUInt8
        _same_grid(mask, ct)
        _same_grid(sitk.ReadImage(str(out / PROBABILITY_DIR / f"{case.patient_id}.nii.gz")), ct)
        _same_grid(sitk.ReadImage(str(out / UNCERTAINTY_DIR / f"{case.patient_id}.nii.gz")), ct)
        assert sitk.GetArrayFromImage(mask).sum() > 0
    # no temporary files left behind (atomic writes)
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or ".tmp" in p.name]

    # a second run skips everything; files are untouched
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.nii.gz")}
    again = predict_dataset(root, out, predictor, bbox_table=table)
    assert again.skipped == report.done and not again.done
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.nii.gz")} == before

    # overwrite replaces a tampered file
    victim = out / f"{cases[0].patient_id}.nii.gz"
    victim.write_bytes(b"garbage")
    forced = predict_dataset(root, out, predictor, bbox_table=table, force=True)
    assert forced.done == report.done
    _same_grid(sitk.ReadImage(str(victim)), sitk.ReadImage(str(cases[0].ct_path)))


def test_parts_split_the_cases_deterministically(
    dataset_2021: tuple[Path, Path, list[Case]], predictor: Predictor, tmp_path: Path
) -> None:
    root, table, cases = dataset_2021
    done = []
    for part in range(2):
        r = predict_dataset(root, tmp_path / "p", predictor, bbox_table=table, num_parts=2, part_id=part)
        done.append(r.done)
    assert done == [(cases[0].patient_id, cases[2].patient_id), (cases[1].patient_id,)]
    with pytest.raises(ConfigError):
        predict_dataset(root, tmp_path / "p", predictor, num_parts=2, part_id=2)


def test_a_failing_case_does_not_stop_the_others(
    dataset_2021: tuple[Path, Path, list[Case]], predictor: Predictor, tmp_path: Path
) -> None:
    root, table, cases = dataset_2021
    bad = cases[1]
    bad.ct_path.write_bytes(b"not a nifti")
    report = predict_dataset(root, tmp_path / "out", predictor, bbox_table=table)
    assert set(report.failed) == {bad.patient_id}
    assert bad.patient_id in report.failed[bad.patient_id] and "corrupt" in report.failed[bad.patient_id]
    assert set(report.done) == {cases[0].patient_id, cases[2].patient_id}
    assert not (tmp_path / "out" / f"{bad.patient_id}.nii.gz").exists()


def test_cli_predict_then_evaluate(
    dataset_2021: tuple[Path, Path, list[Case]], toys: SimpleNamespace, tmp_path: Path
) -> None:
    root, table, cases = dataset_2021
    torch.manual_seed(0)
    ckpt = tmp_path / "model.pt"
    save_checkpoint(
        ckpt, build_model("senorm_unet", n_filters=4), metadata={"preprocess": to_dict(toys.SMALL_CONFIG)}
    )
    out = tmp_path / "pred"
    runner = CliRunner()
    args = [
        "predict",
        str(root),
        str(out),
        "--model",
        str(ckpt),
        "--bbox",
        str(table),
        "--precision",
        "fp32",
        "--backend",
        "torch",
    ]
    result = runner.invoke(app, [*args, "--num-parts", "3", "--part-id", "0"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.nii.gz")) == [f"{cases[0].patient_id}.nii.gz"]
    result = runner.invoke(app, [*args, "--save-probabilities"])
    assert result.exit_code == 0, result.output
    for case in cases:
        _same_grid(sitk.ReadImage(str(out / f"{case.patient_id}.nii.gz")), sitk.ReadImage(str(case.ct_path)))
    # ground truth = the toy's sphere on each CT grid, as a folder of <PID>.nii.gz
    gt = tmp_path / "gt"
    gt.mkdir()
    for case in cases:
        ct = sitk.ReadImage(str(case.ct_path))
        label = sitk.Cast(ct > 0, sitk.sitkUInt8)
        sitk.WriteImage(label, str(gt / f"{case.patient_id}.nii.gz"))
    result = runner.invoke(
        app, ["evaluate", str(out), str(gt), str(tmp_path / "ev"), "--edition", "2021", "--bbox", str(table)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ev" / "summary.json").is_file() and (tmp_path / "ev" / "per_case.csv").is_file()
    # bad input is one clear line, exit 1
    result = runner.invoke(app, ["predict", str(root), str(out), "--model", str(tmp_path / "missing.pt")])
    assert result.exit_code == 1
    assert "error" in result.output.lower()


def test_predict_dataset_writes_nothing_partial_when_interrupted(
    dataset_2021: tuple[Path, Path, list[Case]],
    toys: SimpleNamespace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, table, _ = dataset_2021
    predictor = Predictor(
        [toys.CTThreshold()], preprocess=toys.SMALL_CONFIG, device="cpu", backend="torch", precision="fp32"
    )
    import hecktorseg.io.image as image_module

    def broken_write(image: sitk.Image, path: str, compress: bool) -> None:
        Path(path).write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(image_module.sitk, "WriteImage", broken_write)
    report = predict_dataset(root, tmp_path / "out", predictor, bbox_table=table)
    assert len(report.failed) == 3
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert not leftovers, leftovers


@pytest.mark.parametrize("workers", [1, 2])
def test_prefetching_workers_give_the_same_masks_in_the_same_order(
    dataset_2021: tuple[Path, Path, list[Case]], predictor: Predictor, tmp_path: Path, workers: int
) -> None:
    root, table, cases = dataset_2021
    serial = predict_dataset(root, tmp_path / "serial", predictor, bbox_table=table, workers=0)
    seen: list[str] = []
    threaded = predict_dataset(
        root,
        tmp_path / "threaded",
        predictor,
        bbox_table=table,
        workers=workers,
        progress=lambda done, total, pid: seen.append(pid),
    )
    assert threaded.done == serial.done == tuple(seen) == tuple(c.patient_id for c in cases)
    for case in cases:
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "serial" / f"{case.patient_id}.nii.gz")))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "threaded" / f"{case.patient_id}.nii.gz")))
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_failing_case_is_reported_with_prefetching_too(
    dataset_2021: tuple[Path, Path, list[Case]], predictor: Predictor, tmp_path: Path, damage: str
) -> None:
    root, table, cases = dataset_2021
    if damage == "corrupt":
        cases[1].pet_path.write_bytes(b"not an image")
    else:
        cases[1].pet_path.unlink()
    report = predict_dataset(root, tmp_path / "out", predictor, bbox_table=table, workers=2)
    assert set(report.failed) == {cases[1].patient_id}
    assert report.done == (cases[0].patient_id, cases[2].patient_id)
