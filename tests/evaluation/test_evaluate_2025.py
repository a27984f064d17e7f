"""evaluate() / evaluate_runs() / ``hecktorseg evaluate`` with the 2025/2026 rules on hand-made folders.

The ground truth is a hand-written 2025 Task 1 folder (``<PID>/<PID>__CT``,
``__PT``, ``<PID>.nii.gz``) with a different voxel size per patient; the
expected scores are worked out by hand in the comments.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage
from typer.testing import CliRunner

from hecktorseg.cli import _common as cli_common
from hecktorseg.cli import app
from hecktorseg.data.synthetic import write_synthetic_dataset
from hecktorseg.errors import DataError, GeometryError, LayoutError
from hecktorseg.evaluation import evaluate, evaluate_runs, find_ground_truth, visualize_case
from hecktorseg.evaluation.visualize import LABEL_COLOURS, _centre_index, _legend_entries

SHAPE = (6, 8, 8)  # z, y, x
SPACINGS = {"CHUM-001": (1.0, 1.0, 2.0), "CHUP-002": (1.0, 1.0, 1.0), "MDA-003": (0.5, 0.5, 1.0)}
REQUIRED = ["n_cases", "gtvp_mean_dice", "gtvn_dsc_agg", "gtvn_f1_agg", "gtvn_tp", "gtvn_fp", "gtvn_fn"]


def _truth() -> dict[str, np.ndarray]:
    a = np.zeros(SHAPE, np.uint8)
    a[1:3, 1:3, 1:3] = 1  # GTVp 8 voxels
    a[4, 5:7, 5:7] = 2  # node N1: 4 voxels
    a[4, 0:2, 6:8] = 2  # node N2: 4 voxels (not touching N1)
    b = np.zeros(SHAPE, np.uint8)
    b[2:4, 2:4, 2:4] = 1  # GTVp 8 voxels
    b[5, 0, 0:3] = 2  # one node: 3 voxels
    c = np.zeros(SHAPE, np.uint8)  # no GTVp
    c[3, 3:5, 3:5] = 2  # one node: 4 voxels
    return {"CHUM-001": a, "CHUP-002": b, "MDA-003": c}


def _image(array: np.ndarray, spacing: tuple[float, float, float], origin: float = 0.0) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin((origin, 0.0, 0.0))
    return image


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(2025 ground-truth folder, perfect predictions, poor predictions)."""
    root, good, poor = tmp_path / "gt", tmp_path / "good", tmp_path / "poor"
    good.mkdir()
    poor.mkdir()
    for pid, array in _truth().items():
        sp = SPACINGS[pid]
        (root / pid).mkdir(parents=True)
        sitk.WriteImage(_image(np.zeros(SHAPE, np.float32), sp), str(root / pid / f"{pid}__CT.nii.gz"))
        sitk.WriteImage(_image(np.zeros(SHAPE, np.float32), sp), str(root / pid / f"{pid}__PT.nii.gz"))
        sitk.WriteImage(_image(array, sp), str(root / pid / f"{pid}.nii.gz"))
        sitk.WriteImage(_image(array, sp), str(good / f"{pid}.nii.gz"))
    # poor: CHUM-001 half the GTVp and only N1; CHUP-002 missing; MDA-003 empty
    a = np.zeros(SHAPE, np.uint8)
    a[1:3, 1:3, 1:2] = 1
    a[4, 5:7, 5:7] = 2
    sitk.WriteImage(_image(a, SPACINGS["CHUM-001"]), str(poor / "CHUM-001.nii.gz"))
    sitk.WriteImage(_image(np.zeros(SHAPE, np.uint8), SPACINGS["MDA-003"]), str(poor / "MDA-003.nii.gz"))
    return root, good, poor


# by hand, the poor run:
#   GTVp Dice: CHUM-001 2·4/(4+8) = 2/3; CHUP-002 (missing) 0; MDA-003 no GTVp anywhere → excluded
#   GTVn mm³: CHUM-001 voxel 2: TP 8, Vgt 16, Vpred 8; CHUP-002 voxel 1: TP 0, Vgt 3; MDA-003 voxel 0.25: Vgt 1
#   lesions: CHUM-001 TP 1 FN 1; CHUP-002 FN 1; MDA-003 FN 1
POOR = {
    "n_cases": 3,
    "gtvp_mean_dice": (2 / 3 + 0.0) / 2,
    "gtvn_dsc_agg": 2 * 8 / (16 + 8 + 3 + 1),
    "gtvn_f1_agg": 2 * 1 / (2 * 1 + 0 + 3),
    "gtvn_tp": 1,
    "gtvn_fp": 0,
    "gtvn_fn": 3,
}


@pytest.mark.parametrize("edition", ["2025", "2026"])
def test_evaluate_patient_folders_by_hand(
    data: tuple[Path, Path, Path], tmp_path: Path, edition: str
) -> None:
    root, _, poor = data
    truths = find_ground_truth(root)
    assert [(t.patient_id, t.label_path.name) for t in truths] == [
        ("CHUM-001", "CHUM-001.nii.gz"),
        ("CHUP-002", "CHUP-002.nii.gz"),
        ("MDA-003", "MDA-003.nii.gz"),
    ]
    assert find_ground_truth(root, layout=edition) == truths
    result = evaluate(poor, root, edition=edition, out_dir=tmp_path / "ev")
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["edition"] == edition
    for key, value in POOR.items():
        assert summary[key] == pytest.approx(value), key
    assert result.headline == pytest.approx(POOR["gtvp_mean_dice"])
    rows = {r["patient_id"]: r for r in csv.DictReader((tmp_path / "ev" / "per_case.csv").open())}
    assert [rows[p]["status"] for p in sorted(rows)] == ["ok", "missing", "empty"]
    assert float(rows["CHUM-001"]["dice_GTVp"]) == pytest.approx(2 / 3)
    assert rows["MDA-003"]["dice_GTVp"] == ""  # NaN: no GTVp in either mask
    assert [rows["CHUM-001"][k] for k in ("gtvn_lesions_gt", "gtvn_tp", "gtvn_fp", "gtvn_fn")] == [
        "2",
        "1",
        "0",
        "1",
    ]
    assert rows["CHUP-002"]["gtvn_fn"] == "1" and rows["CHUP-002"]["message"] == "no prediction file"


def test_ground_truth_without_images_is_found_by_the_layout_records(
    data: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, good, poor = data
    # a patient without its PET (never read by the scoring) is still scored, not an abort
    (root / "CHUP-002" / "CHUP-002__PT.nii.gz").unlink()
    assert evaluate(poor, root, edition="2025").summary["gtvn_fn"] == POOR["gtvn_fn"]
    # the label maps alone in patient folders: detected, and with the layout forced; quietly
    labels_only = tmp_path / "labels_only"
    for pid in _truth():
        (labels_only / pid).mkdir(parents=True)
        shutil.copy(root / pid / f"{pid}.nii.gz", labels_only / pid / f"{pid}.nii.gz")
    caplog.clear()
    with caplog.at_level("WARNING"):
        for layout in (None, "2025", "2026"):
            truths = find_ground_truth(labels_only, layout=layout)
            assert [t.label_path for t in truths] == [
                labels_only / p / f"{p}.nii.gz" for p in sorted(_truth())
            ]
    assert not caplog.records
    result = evaluate(good, labels_only, edition="2025")
    assert result.summary["gtvn_f1_agg"] == 1.0 and result.summary["n_cases"] == 3
    with pytest.raises(LayoutError, match="no cases of layout 2020"):
        find_ground_truth(labels_only, layout="2020")


def test_evaluate_runs_writes_ranking(data: tuple[Path, Path, Path], tmp_path: Path) -> None:
    root, good, poor = data
    ranked = evaluate_runs([poor, good], root, edition="2025", out_dir=tmp_path / "ev")
    assert [r.run for r in ranked.ranking] == ["good", "poor"]
    assert ranked.runs["good"].summary["gtvn_f1_agg"] == 1.0
    assert ranked.runs["poor"].summary["gtvn_dsc_agg"] == pytest.approx(POOR["gtvn_dsc_agg"])
    rows = list(csv.DictReader((tmp_path / "ev" / "ranking.csv").open()))
    assert [(r["run"], r["rank_final"], r["borda_gtvn"]) for r in rows] == [
        ("good", "1", "2"),
        ("poor", "2", "4"),
    ]
    assert (tmp_path / "ev" / "poor" / "per_case.csv").is_file()
    assert json.loads((tmp_path / "ev" / "good" / "summary.json").read_text())["gtvp_mean_dice"] == 1.0
    with pytest.raises(DataError, match="already exists"):
        evaluate_runs([poor, good], root, edition="2025", out_dir=tmp_path / "ev")
    with pytest.raises(DataError, match="no ranking"):
        evaluate_runs([poor, good], root, edition="2022")
    # two folders with one name are told apart
    twice = evaluate_runs([good, good], root, edition="2026")
    assert sorted(twice.runs) == ["good", "good-2"] and [r.rank_final for r in twice.ranking] == [1, 1]
    # runs kept as <run>/preds are named by their run folders, not preds, preds-2
    for run, source in (("runA", poor), ("runB", good)):
        shutil.copytree(source, tmp_path / run / "preds")
    ranked = evaluate_runs([tmp_path / "runA" / "preds", tmp_path / "runB" / "preds"], root, edition="2025")
    assert [r.run for r in ranked.ranking] == ["runB-preds", "runA-preds"]


def test_cli_single_and_several_runs(
    data: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, good, poor = data
    # the table must not wrap: fix the console's width (rich reads COLUMNS only when the console is
    # made, which under xdist may be another test's CliRunner with its own COLUMNS)
    monkeypatch.setattr(cli_common.console, "_width", 200)
    runner = CliRunner()
    one = runner.invoke(app, ["evaluate", str(poor), str(root), str(tmp_path / "one"), "--edition", "2025"])
    assert one.exit_code == 0, one.output
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert [k for k in summary if k in REQUIRED] == REQUIRED
    assert summary["gtvn_fn"] == 3
    wide = runner.invoke(app, ["evaluate", str(poor), str(root), "--edition", "2025"])
    row = next(line for line in wide.output.splitlines() if "CHUM-001" in line and "│" in line)
    cells = [c.strip() for c in row.split("│") if c.strip()]
    # patient, status, Dice GTVp, Dice GTVn (4 decimals); lesion counts as whole numbers: 2 GT, TP 1, FP 0, FN 1
    assert cells == ["CHUM-001", "ok", "0.6667", "0.6667", "2", "1", "0", "1"]
    args = [
        "evaluate",
        str(poor),
        str(root),
        str(tmp_path / "many"),
        "-e",
        "2025",
        "--predictions",
        str(good),
    ]
    many = runner.invoke(app, args)
    assert many.exit_code == 0, many.output
    rows = list(csv.DictReader((tmp_path / "many" / "ranking.csv").open()))
    assert [r["run"] for r in rows] == ["good", "poor"]
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    old = runner.invoke(app, [*args[:5], "2022", "--predictions", str(good)])
    assert old.exit_code == 1 and "no ranking" in old.output


def test_off_grid_prediction_is_a_clear_error_through_the_cli(
    data: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, good, _ = data
    shifted = tmp_path / "shifted"
    shutil.copytree(good, shifted)
    moved = sitk.ReadImage(str(shifted / "CHUP-002.nii.gz"))
    moved.SetOrigin((0.5, 0.0, 0.0))  # half a voxel off: the 2025 rules do not resample
    sitk.WriteImage(moved, str(shifted / "CHUP-002.nii.gz"))
    result = CliRunner().invoke(
        app, ["evaluate", str(shifted), str(root), str(tmp_path / "ev"), "-e", "2025"]
    )
    assert result.exit_code == 1
    assert "CHUP-002.nii.gz" in result.output and "not on the ground-truth grid" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "ev" / "summary.json").exists()
    with pytest.raises(GeometryError) as info:
        evaluate(shifted, root, edition="2026")
    assert info.value.path == shifted / "CHUP-002.nii.gz"
    # the 2022 rules resample the same prediction instead
    assert evaluate(shifted, root, edition="2022").summary["n_ok"] == 3


def test_2022_layout_with_2025_rules(tmp_path: Path) -> None:
    root = tmp_path / "d"
    cases = write_synthetic_dataset(root, n_cases=2, edition="2022", seed=3)
    pred = tmp_path / "pred"
    pred.mkdir()
    n_lesions = 0
    for case in cases:
        assert case.label_path is not None
        label = sitk.ReadImage(str(case.label_path))
        array = sitk.GetArrayFromImage(label)
        n_lesions += ndimage.label(array == 2, structure=np.ones((3, 3, 3)))[1]
        no_nodes = sitk.GetImageFromArray(np.where(array == 2, 0, array).astype(np.uint8))
        no_nodes.CopyInformation(label)
        sitk.WriteImage(no_nodes, str(pred / f"{case.patient_id}.nii.gz"))
    result = evaluate(pred, root, edition="2025")
    assert result.summary["n_cases"] == 2
    assert result.summary["gtvp_mean_dice"] == 1.0
    assert (result.summary["gtvn_tp"], result.summary["gtvn_fn"]) == (0, n_lesions)
    if n_lesions:
        assert result.summary["gtvn_f1_agg"] == 0.0 and result.summary["gtvn_dsc_agg"] == 0.0


def test_legend_and_colours_of_the_pictures(tmp_path: Path) -> None:
    assert _legend_entries({0, 1, 2}, {0, 2}) == [
        ("GTVp ground truth", LABEL_COLOURS[1], "solid"),
        ("GTVn ground truth", LABEL_COLOURS[2], "solid"),
        ("GTVn prediction", LABEL_COLOURS[2], "dashed"),
    ]
    assert _legend_entries({0, 1}, None) == [("GTVp ground truth", LABEL_COLOURS[1], "solid")]
    assert LABEL_COLOURS[1] != LABEL_COLOURS[2]
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    ct = _image(np.full((12, 24, 24), -1000.0, np.float32), (1.0, 1.0, 1.0))  # black CT, no colour
    pet = _image(np.zeros((12, 24, 24), np.float32), (1.0, 1.0, 1.0))
    label = np.zeros((12, 24, 24), np.uint8)
    label[4:8, 6:12, 6:12] = 1
    label[5:7, 14:20, 14:20] = 2
    png = visualize_case(ct, pet, _image(label, (1.0, 1.0, 1.0)), None, tmp_path / "p.png", dpi=50)
    rgb = imread(str(png))[..., :3]
    r, g, b = (rgb[: int(rgb.shape[0] * 0.85), :, i] for i in range(3))  # above the legend: the contours
    greenish = (g > 0.25) & (r < 0.5 * g) & (b < 0.5 * g)  # on a grey/black picture only a contour is
    magentaish = (r > 0.25) & (b > 0.25) & (g < 0.5 * np.minimum(r, b))
    assert greenish.sum() > 20 and magentaish.sum() > 20
    assert to_rgb(LABEL_COLOURS[1])[1] > 0.5 and min(to_rgb(LABEL_COLOURS[2])[::2]) > 0.5


def test_slices_cross_in_a_structure() -> None:
    nodes = np.zeros((20, 20, 20), np.float32)
    nodes[2:4, 9:11, 2:4] = 2  # two nodes far apart: their centroid (z 9.5, x 9.5) lies in neither
    nodes[15:17, 9:11, 15:17] = 2
    z, y, x = _centre_index([nodes, None], nodes.shape)
    assert nodes[z, y, x] == 2
    both = nodes.copy()
    both[8:12, 12:16, 8:12] = 1  # a primary tumour: the slices go through it, not the nodes
    assert both[_centre_index([both], both.shape)] == 1
    empty = np.zeros_like(nodes)
    assert _centre_index([empty, nodes], nodes.shape) == (z, y, x)  # else the prediction
    assert _centre_index([empty, None], nodes.shape) == (10, 10, 10)  # else the image centre
