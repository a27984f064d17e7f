"""The official per-edition rules on small crafted cases with hand-computed scores."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import SimpleITK as sitk

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.evaluation import aggregated_dice, score_2020, score_2021, score_2022, summarize
from hecktorseg.evaluation.scoring_box import box_grid, resample_to_box
from hecktorseg.io import BBox

SPACING = (1.0, 1.0, 2.0)  # x, y, z
ORIGIN = (10.0, 20.0, 30.0)
SHAPE = (10, 20, 20)  # z, y, x
# box whose grid (GT spacing, origin at the corner) lands on GT voxel centres 2..11 (x, y) and 2..6 (z)
BOX = BBox(x1=12.0, x2=22.0, y1=22.0, y2=32.0, z1=34.0, z2=44.0)


@pytest.fixture
def gt(make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]) -> sitk.Image:
    # z 3..5, y 4..9, x 4..9 : entirely inside the box (box z indices 2..6, y/x 2..11)
    return make_image(cube(SHAPE, (3, 4, 4), (6, 10, 10)), SPACING, ORIGIN)


def test_box_grid_geometry() -> None:
    g = box_grid(BOX, SPACING)
    assert g.origin == (12.0, 22.0, 34.0)
    assert g.spacing == SPACING
    assert g.size == (10, 10, 5)


def test_resample_to_box_crops_and_zero_fills(
    make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    full = make_image(np.ones(SHAPE, dtype=np.uint8), SPACING, ORIGIN)
    arr = resample_to_box(full, BOX, SPACING)
    assert arr.shape == (5, 10, 10) and arr.all()
    # a box that sticks out of the image: the outside is 0
    big = BBox(x1=0.0, x2=40.0, y1=22.0, y2=32.0, z1=34.0, z2=44.0)
    arr = resample_to_box(full, big, SPACING)
    assert arr.shape == (5, 10, 40)
    assert arr[:, :, :10].sum() == 0 and arr[:, :, 10:30].all() and arr[:, :, 30:].sum() == 0


@pytest.mark.parametrize("edition", ["2020", "2021"])
def test_identical_prediction_is_perfect(gt: sitk.Image, edition: str) -> None:
    score = (score_2020 if edition == "2020" else score_2021)(gt, gt, BOX)
    assert score.status == "ok"
    assert score.metrics["dice"] == 1.0
    assert score.metrics["hd95"] == 0.0
    assert score.metrics["precision"] == score.metrics["recall"] == 1.0
    assert score.metrics["volume_gt_mm3"] == pytest.approx(3 * 6 * 6 * 2.0)


def test_2022_identical_prediction_is_perfect(
    make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    arr = cube(SHAPE, (3, 4, 4), (6, 10, 10)) + cube(SHAPE, (3, 12, 12), (5, 15, 15), 2)
    gt = make_image(arr, SPACING, ORIGIN)
    score = score_2022(gt, gt)
    assert score.metrics["dice_GTVp"] == score.metrics["dice_GTVn"] == score.metrics["dice"] == 1.0
    assert score.metrics["hd95_GTVp"] == score.metrics["hd95_GTVn"] == 0.0
    assert aggregated_dice([score]) == {"GTVp": 1.0, "GTVn": 1.0}
    summary = summarize([score], "2022")
    assert summary["dsc_agg_mean"] == 1.0 and summary["mean_dice"] == 1.0


def test_2020_hand_computed_with_outside_voxels_ignored(
    gt: sitk.Image, make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    # prediction: half of the GT (x 4..6 → 3 of 6 columns) plus false positives outside the box (x 15..19)
    arr = cube(SHAPE, (3, 4, 4), (6, 10, 7)) + cube(SHAPE, (3, 4, 15), (6, 10, 20))
    pred = make_image(arr, SPACING, ORIGIN)
    score = score_2020(pred, gt, BOX)
    # inside the box: TP = 3*6*3 = 54, |P| = 54 + (x 15..11 → none: box x covers GT indices 2..11)
    assert score.metrics["precision"] == pytest.approx(1.0)
    assert score.metrics["recall"] == pytest.approx(0.5)
    assert score.metrics["dice"] == pytest.approx(2 * 54 / (54 + 108))


def test_2020_and_2021_empty_and_missing(gt: sitk.Image, make_image: Callable[..., sitk.Image]) -> None:
    empty = make_image(np.zeros(SHAPE, dtype=np.uint8), SPACING, ORIGIN)
    s20 = score_2020(empty, gt, BOX)
    assert s20.status == "empty"
    assert (s20.metrics["dice"], s20.metrics["precision"], s20.metrics["recall"]) == (0.0, 0.0, 0.0)
    s21 = score_2021(empty, gt, BOX)
    assert s21.status == "empty" and s21.metrics["dice"] == 0.0 and s21.metrics["hd95"] == 0.0
    m21 = score_2021(None, gt, BOX)
    assert m21.status == "missing" and m21.metrics["dice"] == 0.0 and math.isinf(m21.metrics["hd95"])
    m20 = score_2020(None, gt, BOX)
    assert m20.metrics["dice"] == m20.metrics["precision"] == m20.metrics["recall"] == 0.0
    summary = summarize([s21, m21, score_2021(gt, gt, BOX)], "2021")
    assert summary["mean_dice"] == pytest.approx(1 / 3)
    assert summary["median_hd95"] == 0.0  # median of (0, inf, 0)
    assert summary["n_missing"] == 1 and summary["n_empty"] == 1


def test_prediction_outside_the_box_counts_as_empty(
    gt: sitk.Image, make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    pred = make_image(cube(SHAPE, (3, 4, 15), (6, 10, 20)), SPACING, ORIGIN)
    assert score_2021(pred, gt, BOX).status == "empty"


def test_non_binary_values_are_an_error(gt: sitk.Image, make_image: Callable[..., sitk.Image]) -> None:
    bad = make_image(np.full(SHAPE, 2, dtype=np.uint8), SPACING, ORIGIN)
    with pytest.raises(DataError, match="outside the allowed set"):
        score_2020(bad, gt, BOX)
    probs = make_image(np.full(SHAPE, 0.4, dtype=np.float32), SPACING, ORIGIN)
    with pytest.raises(DataError, match="non-integer"):
        score_2021(probs, gt, BOX)


def test_prediction_on_another_grid_is_resampled(
    gt: sitk.Image, make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    # the same object on a grid with half the spacing and another origin: still a perfect score
    fine = np.zeros((20, 40, 40), dtype=np.uint8)
    # world x of GT voxels 4..9 → 14..19 mm ± 0.5; fine grid origin 10 → indices for x in [13.5, 19.5)
    fine[:, :, :] = 0
    zs = np.arange(20) * 1.0 + 30.0
    ys = np.arange(40) * 0.5 + 20.0
    xs = np.arange(40) * 0.5 + 10.0
    zz, yy, xx = np.meshgrid(zs, ys, xs, indexing="ij")
    fine[(zz >= 35) & (zz < 41) & (yy >= 23.5) & (yy < 29.5) & (xx >= 13.5) & (xx < 19.5)] = 1
    pred = make_image(fine, (0.5, 0.5, 1.0), (10.0, 20.0, 30.0))
    score = score_2021(pred, gt, BOX)
    assert score.metrics["dice"] == pytest.approx(1.0)


def test_2021_quirk_changes_hd95_on_anisotropic_case(
    make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    spacing = (1.0, 1.0, 3.0)
    box = BBox(x1=0.0, x2=20.0, y1=0.0, y2=20.0, z1=0.0, z2=60.0)
    gt = make_image(cube((20, 20, 20), (4, 4, 4), (12, 12, 12)), spacing)
    pred = make_image(cube((20, 20, 20), (6, 4, 4), (14, 12, 12)), spacing)  # 2 slices = 6 mm along z
    correct = score_2021(pred, gt, box)
    quirk = score_2021(pred, gt, box, official_spacing_quirk=True)
    assert correct.metrics["hd95"] == pytest.approx(6.0)
    assert quirk.metrics["hd95"] == pytest.approx(2.0)  # z got the x spacing (1 mm)
    assert quirk.metrics["dice"] == correct.metrics["dice"] == pytest.approx(2 * 6 / 16)


def test_2022_aggregated_dice_by_hand(
    make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    shape = (8, 8, 8)
    # case A (spacing 1,1,2 → 2 mm³ voxels): GTVp 8 voxels, predicted 4 of them; GTVn absent, 2 false voxels
    gt_a = cube(shape, (0, 0, 0), (2, 2, 2))
    pred_a = cube(shape, (0, 0, 0), (1, 2, 2)) + cube(shape, (5, 5, 5), (6, 6, 7), 2)
    # case B (spacing 1,1,1): GTVp 8 voxels predicted exactly; GTVn 8 voxels, predicted 8 shifted by 1 (4 overlap)
    gt_b = cube(shape, (0, 0, 0), (2, 2, 2)) + cube(shape, (4, 4, 4), (6, 6, 6), 2)
    pred_b = cube(shape, (0, 0, 0), (2, 2, 2)) + cube(shape, (4, 4, 5), (6, 6, 7), 2)
    sa = score_2022(make_image(pred_a, (1, 1, 2)), make_image(gt_a, (1, 1, 2)))
    sb = score_2022(make_image(pred_b, (1, 1, 1)), make_image(gt_b, (1, 1, 1)))
    agg = aggregated_dice([sa, sb])
    # GTVp: TP = 4*2 + 8 = 16 mm³; Vgt = 16 + 8; Vpred = 8 + 8
    assert agg["GTVp"] == pytest.approx(2 * 16 / (24 + 16))
    # GTVn: TP = 0 + 4; Vgt = 0 + 8; Vpred = 2*2 + 8
    assert agg["GTVn"] == pytest.approx(2 * 4 / (8 + 12))
    assert math.isnan(sa.metrics["dice_GTVn"]) is False  # predicted but absent: Dice 0
    assert sa.metrics["dice_GTVn"] == 0.0
    summary = summarize([sa, sb], "2022")
    assert summary["dsc_agg"] == agg
    assert summary["dsc_agg_mean"] == pytest.approx((agg["GTVp"] + agg["GTVn"]) / 2)
    # a missing case keeps its ground-truth volume in the denominator
    missing = score_2022(None, make_image(gt_b, (1, 1, 1)))
    assert missing.status == "missing"
    agg2 = aggregated_dice([sa, sb, missing])
    assert agg2["GTVp"] == pytest.approx(2 * 16 / (24 + 8 + 16))


def test_2022_absent_label_is_nan_per_case(
    make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    gt = make_image(cube((8, 8, 8), (2, 2, 2), (5, 5, 5)))
    score = score_2022(gt, gt)
    assert math.isnan(score.metrics["dice_GTVn"]) and score.metrics["dice"] == 1.0


def test_2022_spacing_mismatch_and_other_grid(
    make_image: Callable[..., sitk.Image], cube: Callable[..., np.ndarray]
) -> None:
    arr = cube((8, 8, 8), (2, 2, 2), (5, 5, 5))
    gt = make_image(arr, (1.0, 1.0, 2.0))
    with pytest.raises(GeometryError, match="spacing"):
        score_2022(make_image(arr, (1.0, 1.0, 1.0)), gt)
    # same spacing, the CT grid is one voxel larger and starts one voxel earlier along x
    bigger = np.zeros((8, 8, 9), dtype=np.uint8)
    bigger[:, :, 1:] = arr
    pred = make_image(bigger, (1.0, 1.0, 2.0), (-1.0, 0.0, 0.0))
    assert score_2022(pred, gt).metrics["dice_GTVp"] == 1.0
    with pytest.raises(DataError, match="outside the allowed set"):
        score_2022(make_image(arr * 3, (1.0, 1.0, 2.0)), gt)
