"""evaluate() over folders, the evaluate / visualize commands and the PNG overlays."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.data.synthetic import write_synthetic_dataset
from hecktorseg.errors import DataError, LayoutError
from hecktorseg.evaluation import evaluate, find_ground_truth, visualize_case, visualize_dataset
from hecktorseg.io import BBox, Case, write_bbox_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _copy_labels_as_predictions(cases: list[Case], pred_dir: Path) -> None:
    pred_dir.mkdir(parents=True, exist_ok=True)
    for case in cases:
        assert case.label_path is not None
        shutil.copy(case.label_path, pred_dir / f"{case.patient_id}.nii.gz")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Case]]]:
    """Two-case synthetic datasets in the 2020, 2021 and 2022 layouts."""
    out = {}
    for edition in ("2020", "2021", "2022"):
        root = tmp_path_factory.mktemp(f"synth{edition}")
        out[edition] = (root, write_synthetic_dataset(root, n_cases=2, edition=edition, seed=1))
    return out


@pytest.mark.parametrize("edition", ["2020", "2021", "2022"])
def test_ground_truth_as_prediction_is_perfect_in_every_edition(
    synthetic: dict[str, tuple[Path, list[Case]]], edition: str, tmp_path: Path
) -> None:
    root, cases = synthetic[edition]
    _copy_labels_as_predictions(cases, tmp_path / "pred")
    result = evaluate(tmp_path / "pred", root, edition=edition, out_dir=tmp_path / "ev")
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["n_cases"] == 2
    assert summary["mean_dice"] == pytest.approx(1.0)
    assert all(c.status == "ok" for c in result.cases)
    if edition == "2020":
        assert summary["mean_precision"] == summary["mean_recall"] == pytest.approx(1.0)
    if edition == "2021":
        assert summary["median_hd95"] == 0.0
    if edition == "2022":
        assert set(summary["dsc_agg"]) == {"GTVp", "GTVn"}
        assert all(v == pytest.approx(1.0) for v in summary["dsc_agg"].values() if v is not None)
        assert summary["dsc_agg"]["GTVp"] == pytest.approx(1.0)
        assert summary["dsc_agg_mean"] == pytest.approx(1.0)
        assert all(c.metrics["hd95_GTVp"] == 0.0 for c in result.cases)
    else:
        assert all(c.metrics["hd95"] == 0.0 for c in result.cases)
    rows = list(csv.DictReader((tmp_path / "ev" / "per_case.csv").open()))
    assert [r["patient_id"] for r in rows] == [c.patient_id for c in cases]


def _label_folder(
    tmp_path: Path, make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> tuple[Path, Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    spacing = (1.0, 1.0, 3.0)
    boxes = {}
    for i, pid in enumerate(["CHUV001", "CHUV002", "CHUV003", "CHUV004"]):
        origin = (10.0 * i, 0.0, 0.0)
        sitk.WriteImage(
            make_image(cube((20, 20, 20), (4, 4, 4), (12, 12, 12)), spacing, origin),
            str(gt / f"{pid}.nii.gz"),
        )
        boxes[pid] = BBox(x1=origin[0], x2=origin[0] + 20, y1=0, y2=20, z1=0, z2=60)
    # CHUV001 perfect; CHUV002 shifted by 2 slices (6 mm); CHUV003 missing; CHUV004 holds a 3
    sitk.WriteImage(
        make_image(cube((20, 20, 20), (4, 4, 4), (12, 12, 12)), spacing, (0, 0, 0)),
        str(pred / "CHUV001.nii.gz"),
    )
    sitk.WriteImage(
        make_image(cube((20, 20, 20), (6, 4, 4), (14, 12, 12)), spacing, (10, 0, 0)),
        str(pred / "CHUV002.nii.gz"),
    )
    sitk.WriteImage(
        make_image(cube((20, 20, 20), (4, 4, 4), (12, 12, 12), 3), spacing, (30, 0, 0)),
        str(pred / "CHUV004.nii.gz"),
    )
    sitk.WriteImage(
        make_image(cube((20, 20, 20), (4, 4, 4), (12, 12, 12)), spacing), str(pred / "OTHER999.nii.gz")
    )
    table = tmp_path / "bbox.csv"
    write_bbox_table(table, boxes)
    return gt, pred, table


def test_label_folder_with_missing_invalid_and_quirk(
    tmp_path: Path,
    make_image: Callable[..., sitk.Image],
    cube: Callable[..., np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    gt, pred, table = _label_folder(tmp_path, make_image, cube)
    assert [g.patient_id for g in find_ground_truth(gt)] == ["CHUV001", "CHUV002", "CHUV003", "CHUV004"]
    result = evaluate(pred, gt, edition="2021", bbox_table=table, out_dir=tmp_path / "ev")
    by_id = {c.patient_id: c for c in result.cases}
    assert [by_id[p].status for p in sorted(by_id)] == ["ok", "ok", "missing", "invalid"]
    assert by_id["CHUV002"].metrics["dice"] == pytest.approx(2 * 6 / 16)
    assert by_id["CHUV002"].metrics["hd95"] == pytest.approx(6.0)
    assert by_id["CHUV003"].metrics["dice"] == 0.0 and math.isinf(by_id["CHUV003"].metrics["hd95"])
    assert by_id["CHUV004"].metrics["dice"] == 0.0 and math.isinf(by_id["CHUV004"].metrics["hd95"])
    assert "outside the allowed set" in by_id["CHUV004"].message
    assert "OTHER999" in caplog.text and "no prediction found" in caplog.text
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["mean_dice"] == pytest.approx((1 + 0.75) / 4)
    assert summary["median_hd95"] is None  # median of (0, 6, inf, inf) = inf → null in strict JSON
    assert summary["n_missing"] == 1 and summary["n_invalid"] == 1
    rows = {r["patient_id"]: r for r in csv.DictReader((tmp_path / "ev" / "per_case.csv").open())}
    assert rows["CHUV003"]["hd95"] == "inf" and rows["CHUV002"]["status"] == "ok"
    # the official spacing quirk: z distances measured with the x spacing
    quirk = evaluate(pred, gt, edition="2021", bbox_table=table, official_spacing_quirk=True)
    assert {c.patient_id: c for c in quirk.cases}["CHUV002"].metrics["hd95"] == pytest.approx(2.0)
    # existing outputs are kept unless asked
    with pytest.raises(DataError, match="already exists"):
        evaluate(pred, gt, edition="2021", bbox_table=table, out_dir=tmp_path / "ev")
    evaluate(pred, gt, edition="2020", bbox_table=table, out_dir=tmp_path / "ev", force=True)
    assert json.loads((tmp_path / "ev" / "summary.json").read_text())["edition"] == "2020"
    with pytest.raises(DataError):
        evaluate(pred, gt, edition="2021", bbox_table=table, strict=True)


def test_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="edition"):
        evaluate(tmp_path, tmp_path, edition="2019")
    with pytest.raises(LayoutError):
        evaluate(tmp_path / "empty", tmp_path / "empty", edition="2021")
    with pytest.raises(DataError, match="not found"):
        evaluate(tmp_path / "nope", tmp_path, edition="2021")


def test_cli_evaluate_positional_and_option_output(
    tmp_path: Path, make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    gt, pred, table = _label_folder(tmp_path, make_image, cube)
    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", str(pred), str(gt), str(tmp_path / "a"), "--edition", "2021", "--bbox", str(table)]
    )
    assert result.exit_code == 0, result.output
    assert "median_hd95" in result.output and "CHUV002" in result.output
    assert (tmp_path / "a" / "summary.json").is_file()
    result = runner.invoke(
        app,
        ["evaluate", str(pred), str(gt), "--out", str(tmp_path / "b"), "-e", "2020", "--bbox", str(table)],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["mean_precision"] == pytest.approx(
        (1 + 0.75) / 4
    )
    result = runner.invoke(app, ["evaluate", str(pred), str(gt), str(tmp_path / "a"), "--edition", "2021"])
    assert result.exit_code == 1 and "already exists" in result.output
    result = runner.invoke(app, ["evaluate", str(pred), str(gt), "--edition", "2023"])
    assert result.exit_code == 1 and "edition" in result.output


def test_visualize_case_and_dataset(synthetic: dict[str, tuple[Path, list[Case]]], tmp_path: Path) -> None:
    root, cases = synthetic["2020"]
    case = cases[0]
    png = visualize_case(
        case.ct_path, case.pet_path, case.label_path, case.label_path, tmp_path / "one.png", title="x"
    )
    assert png.read_bytes()[:8] == PNG_MAGIC
    # without any mask: slices through the image centre
    plain = visualize_case(sitk.ReadImage(str(case.ct_path)), case.pet_path, out_png=tmp_path / "plain.png")
    assert plain.read_bytes()[:8] == PNG_MAGIC
    _copy_labels_as_predictions(cases[:1], tmp_path / "pred")
    # the Case form: visualize_case(case, png, prediction=...)
    from_case = visualize_case(
        case, tmp_path / "case.png", prediction=tmp_path / "pred" / f"{case.patient_id}.nii.gz"
    )
    assert from_case.read_bytes()[:8] == PNG_MAGIC
    written = visualize_dataset(root, tmp_path / "pngs", predictions_dir=tmp_path / "pred")
    assert [p.name for p in written] == [f"{c.patient_id}.png" for c in cases]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in written)
    assert not [p for p in (tmp_path / "pngs").iterdir() if p.name.startswith(".")]
    # one case folder (the 2020 per-patient folder) through the CLI
    runner = CliRunner()
    result = runner.invoke(app, ["visualize", str(case.ct_path.parent), str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cli" / f"{case.patient_id}.png").is_file()
    result = runner.invoke(app, ["visualize", str(tmp_path / "pred"), str(tmp_path / "cli2")])
    assert result.exit_code == 1
