"""The HECKTOR 2025/2026 rules on crafted cases with hand-computed scores.

Lesion references come from scipy.ndimage.label with an explicit full 3×3×3
structure (26-connectivity) and from brute force over all matchings; Dice and
F1 from the formulas written out by hand.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from hecktorseg.errors import DataError, GeometryError
from hecktorseg.evaluation import (
    EDITIONS,
    RULES,
    aggregated_f1,
    get_rules,
    label_lesions,
    match_lesions,
    rank_runs_2025,
    score_2025,
    summarize,
    summarize_2025,
)
from hecktorseg.evaluation.ranking import competition_rank

REQUIRED_KEYS = {"n_cases", "gtvp_mean_dice", "gtvn_dsc_agg", "gtvn_f1_agg", "gtvn_tp", "gtvn_fp", "gtvn_fn"}


def _slab(k: int) -> np.ndarray:
    """The first ``k`` voxels (raster order) of a 10×10 slab at z = 1 in a (3, 12, 12) volume."""
    flat = np.zeros(100, dtype=bool)
    flat[:k] = True
    out = np.zeros((3, 12, 12), dtype=bool)
    out[1, 1:11, 1:11] = flat.reshape(10, 10)
    return out


# -- lesions ----------------------------------------------------------------------------------------
def test_diagonal_neighbours_are_one_lesion_26_not_6_connected() -> None:
    mask = np.zeros((4, 4, 4), dtype=np.uint8)
    mask[1, 1, 1] = 1
    mask[2, 2, 2] = 1  # touches the first only at a corner
    mask[0, 3, 3] = 1  # far from both
    labels, n = label_lesions(mask)
    ref, n_ref = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    _, n_six = ndimage.label(mask)  # scipy's default: faces only (6-connectivity)
    assert n == n_ref == 2 and n_six == 3
    assert labels[1, 1, 1] == labels[2, 2, 2] != labels[0, 3, 3]
    assert np.array_equal(labels > 0, ref > 0)
    # one predicted corner-touching pair covering both voxels is one lesion matching one lesion
    gt = np.zeros_like(mask)
    gt[1, 1, 1] = gt[2, 2, 2] = 1
    match = match_lesions(gt, gt)
    assert (match.n_gt, match.n_pred, match.tp, match.fp, match.fn) == (1, 1, 1, 0, 0)


@pytest.mark.parametrize(("k", "detected"), [(29, False), (30, False), (31, True)])
def test_iou_threshold_is_strictly_above_0_3(k: int, detected: bool) -> None:
    gt = _slab(100)
    pred = _slab(k)  # inside the 100-voxel lesion: IoU = k / 100
    match = match_lesions(pred, gt)
    assert (match.n_gt, match.n_pred) == (1, 1)
    assert match.tp == int(detected)
    assert (match.fp, match.fn) == ((0, 0) if detected else (1, 1))
    if detected:
        assert match.pairs[0][2] == pytest.approx(k / 100)


def test_iou_counts_the_predicted_voxels_outside_the_lesion() -> None:
    gt = _slab(40)  # rows 0..3 of the slab
    pred = np.zeros_like(gt)
    pred[1, 1:11, 1:11][2:6] = True  # rows 2..5: 20 inside, 20 outside → IoU = 20 / 60 = 1/3
    match = match_lesions(pred, gt)
    assert match.tp == 1 and match.pairs[0][2] == pytest.approx(1 / 3)
    pred[1, 1:11, 1:11][6] = True  # one more row outside → 20 / 70 < 0.3
    assert match_lesions(pred, gt).tp == 0


def test_one_predicted_lesion_spanning_two_true_ones_detects_one() -> None:
    gt = np.zeros((3, 4, 12), dtype=np.uint8)
    gt[1, 0:2, 0:5] = 1  # A: 10 voxels
    gt[1, 0:2, 6:11] = 1  # B: 10 voxels, one empty column apart (not touching)
    pred = np.zeros_like(gt)
    pred[1, 0:2, 0:11] = 1  # spans A, the gap and B: 22 voxels
    assert ndimage.label(gt, structure=np.ones((3, 3, 3)))[1] == 2
    match = match_lesions(pred, gt)
    # IoU(A, P) = IoU(B, P) = 10 / 22 > 0.3, but P detects only one of them
    assert (match.n_gt, match.n_pred, match.tp, match.fp, match.fn) == (2, 1, 1, 0, 1)
    assert match.pairs[0][2] == pytest.approx(10 / 22)
    assert match.f1 == pytest.approx(2 * 1 / (2 * 1 + 0 + 1))


def _brute_force_max_matching(iou: np.ndarray) -> int:
    n_gt, n_pred = iou.shape
    best = 0
    for perm in itertools.permutations(range(n_pred), min(n_gt, n_pred)):
        best = max(best, sum(1 for i, j in enumerate(perm) if iou[i, j] > 0.3))
    return best


def test_matching_is_an_optimal_assignment_not_greedy() -> None:
    gt = np.zeros((3, 4, 22), dtype=np.uint8)
    pred = np.zeros_like(gt)
    gt[1, 0, 0:20] = 1  # G1: 20 voxels
    gt[1, 2, 14:20] = 1  # G2: 6 voxels, a row apart from G1
    pred[1, 0, 0:7] = 1  # P2: 7 voxels inside G1 → IoU(G1, P2) = 7/20 = 0.35
    pred[1, 0, 8:20] = 1  # P1: 12 voxels of G1 …
    pred[1, 1, 19] = 1  # … a bridge …
    pred[1, 2, 14:20] = 1  # … and all of G2: |P1| = 19; IoU(G1, P1) = 12/27, IoU(G2, P1) = 6/19
    g_lab, n_g = ndimage.label(gt, structure=np.ones((3, 3, 3)))
    p_lab, n_p = ndimage.label(pred, structure=np.ones((3, 3, 3)))
    assert (n_g, n_p) == (2, 2)
    iou = np.zeros((n_g, n_p))
    for i in range(n_g):
        for j in range(n_p):
            a, b = g_lab == i + 1, p_lab == j + 1
            iou[i, j] = (a & b).sum() / (a | b).sum()
    assert sorted(iou.ravel().round(4)) == sorted(np.round([12 / 27, 7 / 20, 6 / 19, 0.0], 4))
    # greedy by IoU would take (G1, P1) = 0.444 first and leave both others unmatched: TP 1
    match = match_lesions(pred, gt)
    assert match.tp == _brute_force_max_matching(iou) == 2
    assert (match.fp, match.fn) == (0, 0)


def test_aggregated_f1_formula_and_empty_set() -> None:
    assert aggregated_f1(3, 1, 2) == pytest.approx(6 / 9)
    assert aggregated_f1(0, 4, 0) == 0.0
    assert aggregated_f1(0, 0, 0) == 1.0
    with pytest.raises(ValueError, match="negative"):
        aggregated_f1(-1, 0, 0)


# -- per case and summary ---------------------------------------------------------------------------
def test_score_2025_per_case_values(make_image: Callable[..., sitk.Image]) -> None:
    gt = np.zeros((6, 10, 10), dtype=np.uint8)
    pred = np.zeros_like(gt)
    gt[1:3, 1:4, 1:4] = 1  # GTVp 18 voxels
    pred[1:3, 1:4, 1:3] = 1  # 12 voxels, all inside
    gt[4, 0:2, 0:2] = 2  # node 1: 4 voxels
    gt[4, 6:8, 6:8] = 2  # node 2: 4 voxels
    pred[4, 0:2, 0:2] = 2  # node 1 exactly
    pred[0, 8:10, 8:10] = 2  # a false node: 4 voxels
    spacing = (0.5, 1.0, 2.0)  # voxel 1 mm³
    s = score_2025(make_image(pred, spacing), make_image(gt, spacing), patient_id="P1")
    m = s.metrics
    assert s.status == "ok"
    assert m["dice_GTVp"] == pytest.approx(2 * 12 / (12 + 18))
    assert m["dice_GTVn"] == pytest.approx(2 * 4 / (8 + 8))
    assert m["dice"] == pytest.approx((2 * 12 / 30 + 0.5) / 2)
    assert (m["gtvn_lesions_gt"], m["gtvn_lesions_pred"]) == (2, 2)
    assert (m["gtvn_tp"], m["gtvn_fp"], m["gtvn_fn"]) == (1, 1, 1)
    assert m["gtvn_f1"] == pytest.approx(0.5)
    assert (m["tp_mm3_GTVn"], m["volume_gt_mm3_GTVn"], m["volume_pred_mm3_GTVn"]) == (4.0, 8.0, 8.0)


def test_empty_and_missing_predictions(make_image: Callable[..., sitk.Image]) -> None:
    gt = np.zeros((4, 6, 6), dtype=np.uint8)
    gt[0, 0:2, 0:2] = 1
    gt[2, 3, 3] = 2
    gt[3, 0, 5] = 2
    gt_img = make_image(gt)
    empty = score_2025(make_image(np.zeros_like(gt)), gt_img)
    missing = score_2025(None, gt_img)
    assert (empty.status, missing.status) == ("empty", "missing")
    for s in (empty, missing):
        assert s.metrics["dice_GTVp"] == 0.0 and s.metrics["dice_GTVn"] == 0.0
        assert (s.metrics["gtvn_tp"], s.metrics["gtvn_fp"], s.metrics["gtvn_fn"]) == (0, 0, 2)
        assert s.metrics["volume_gt_mm3_GTVn"] == 2.0


def test_off_grid_and_bad_values_are_errors(make_image: Callable[..., sitk.Image]) -> None:
    gt = np.zeros((4, 6, 6), dtype=np.uint8)
    gt[1, 1, 1] = 1
    with pytest.raises(GeometryError, match="not on the ground-truth grid"):
        score_2025(make_image(gt, origin=(1.0, 0.0, 0.0)), make_image(gt))
    with pytest.raises(GeometryError, match="not on the ground-truth grid"):
        score_2025(make_image(gt, spacing=(1.0, 1.0, 2.0)), make_image(gt))
    with pytest.raises(GeometryError, match="not on the ground-truth grid"):
        score_2025(make_image(np.zeros((4, 6, 7), dtype=np.uint8)), make_image(gt))
    bad = gt.copy()
    bad[0, 0, 0] = 3
    with pytest.raises(DataError, match="outside the allowed set"):
        score_2025(make_image(bad), make_image(gt))


def test_summary_mm3_aggregation_missing_gtvp_and_keys(make_image: Callable[..., sitk.Image]) -> None:
    shape = (4, 6, 6)
    # case A, voxel 2 mm³: GTVp Dice 1; GTVn 8 true voxels, 4 predicted inside
    gt_a, pr_a = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    gt_a[0, 0:2, 0:2] = pr_a[0, 0:2, 0:2] = 1
    gt_a[2:4, 3:5, 3:5] = 2
    pr_a[2, 3:5, 3:5] = 2
    # case B, voxel 1 mm³: no GTVp anywhere (excluded from the GTVp mean); GTVn 10 vs 10, 5 shared
    gt_b, pr_b = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    gt_b[1, 0:2, 0:5] = 2
    pr_b[1, 1:3, 0:5] = 2
    # case C, voxel 1 mm³: no GTVp in the ground truth but one predicted (Dice 0, counted); no nodes
    gt_c, pr_c = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    pr_c[0, 0, 0] = 1
    scores = [
        score_2025(make_image(pr_a, (1, 1, 2)), make_image(gt_a, (1, 1, 2)), patient_id="A"),
        score_2025(make_image(pr_b), make_image(gt_b), patient_id="B"),
        score_2025(make_image(pr_c), make_image(gt_c), patient_id="C"),
    ]
    assert math.isnan(scores[1].metrics["dice_GTVp"]) and scores[2].metrics["dice_GTVp"] == 0.0
    summary = summarize(scores, "2025")
    assert set(summary) >= REQUIRED_KEYS
    assert summary["n_cases"] == 3
    assert summary["gtvp_mean_dice"] == pytest.approx((1.0 + 0.0) / 2) and summary["gtvp_n_scored"] == 2
    # mm³: TP 4·2 + 5·1 = 13; V_gt 8·2 + 10 = 26; V_pred 4·2 + 10 = 18 (voxel counts would give 18/32)
    assert summary["gtvn_dsc_agg"] == pytest.approx(2 * 13 / (26 + 18))
    # A: the 4 predicted voxels match the 8-voxel node with IoU 0.5; B: IoU 5/15 = 1/3 > 0.3
    assert (summary["gtvn_tp"], summary["gtvn_fp"], summary["gtvn_fn"]) == (2, 0, 0)
    assert summary["gtvn_f1_agg"] == 1.0
    assert summary == summarize_2025(scores)
    assert summarize(scores, "2026")["edition"] == "2026"


def test_summary_of_empty_sets() -> None:
    from hecktorseg.evaluation import CaseScore

    nothing = CaseScore(
        "P",
        "empty",
        {"dice_GTVp": math.nan, "gtvn_tp": 0.0, "gtvn_fp": 0.0, "gtvn_fn": 0.0, "volume_gt_mm3_GTVn": 0.0},
    )
    summary = summarize_2025([nothing])
    assert summary["gtvp_mean_dice"] == summary["gtvn_dsc_agg"] == summary["gtvn_f1_agg"] == 1.0
    none = summarize_2025([])
    assert none["n_cases"] == 0 and math.isnan(none["gtvn_f1_agg"]) and math.isnan(none["gtvp_mean_dice"])


# -- ranking ----------------------------------------------------------------------------------------
def test_competition_rank_ties_and_nan() -> None:
    assert competition_rank([0.5, 0.9, 0.5, 0.1]) == [2, 1, 2, 4]
    assert competition_rank([3, 4, 3], higher_is_better=False) == [1, 3, 1]
    assert competition_rank([math.nan, 0.2, math.nan]) == [2, 1, 2]


def test_borda_ranking_of_three_runs_with_ties() -> None:
    summaries = {
        "A": {"gtvp_mean_dice": 0.80, "gtvn_dsc_agg": 0.70, "gtvn_f1_agg": 0.60},
        "B": {"gtvp_mean_dice": 0.75, "gtvn_dsc_agg": 0.72, "gtvn_f1_agg": 0.60},
        "C": {"gtvp_mean_dice": 0.80, "gtvn_dsc_agg": 0.65, "gtvn_f1_agg": 0.70},
    }
    table = {r.run: r for r in rank_runs_2025(summaries)}
    # by hand: GTVp A 1, C 1 (tie), B 3; DSCagg B 1, A 2, C 3; F1agg C 1, A 2, B 2 (tie)
    assert {k: r.rank_gtvp for k, r in table.items()} == {"A": 1, "B": 3, "C": 1}
    assert {k: r.rank_gtvn_dsc for k, r in table.items()} == {"A": 2, "B": 1, "C": 3}
    assert {k: r.rank_gtvn_f1 for k, r in table.items()} == {"A": 2, "B": 2, "C": 1}
    # GTVn Borda: A 2+2 = 4, B 1+2 = 3, C 3+1 = 4 → B 1, A 2, C 2
    assert {k: (r.borda_gtvn, r.rank_gtvn) for k, r in table.items()} == {
        "A": (4, 2),
        "B": (3, 1),
        "C": (4, 2),
    }
    # final Borda: A 1+2 = 3, B 3+1 = 4, C 1+2 = 3 → A 1, C 1, B 3
    assert {k: (r.borda_final, r.rank_final) for k, r in table.items()} == {
        "A": (3, 1),
        "B": (4, 3),
        "C": (3, 1),
    }
    assert [r.run for r in rank_runs_2025(summaries)] == ["A", "C", "B"]
    # a JSON null (NaN) ranks last
    nulls = rank_runs_2025(
        {**summaries, "D": {"gtvp_mean_dice": None, "gtvn_dsc_agg": 0.9, "gtvn_f1_agg": None}}
    )
    # D: GTVp 4; DSCagg D 1, B 2, A 3, C 4; F1agg D 4 → GTVn Borda A 5, B 4, C 5, D 5 → B 1, A/C/D 2
    assert [(r.run, r.rank_gtvp, r.rank_gtvn, r.rank_final) for r in nulls] == [
        ("A", 1, 2, 1),
        ("C", 1, 2, 1),
        ("B", 3, 1, 3),
        ("D", 4, 2, 4),
    ]


# -- the rules records ------------------------------------------------------------------------------
def test_rules_records() -> None:
    assert EDITIONS == ("2020", "2021", "2022", "2025", "2026")
    r25, r26 = get_rules("2025"), get_rules("2026")
    assert r25.grid == r26.grid == "exact" and r25.labels == frozenset({0, 1, 2})
    assert (r25.score, r25.summarize, r25.metric_columns, r25.rank) == (
        r26.score,
        r26.summarize,
        r26.metric_columns,
        r26.rank,
    )
    assert set(r25.summary_keys) >= REQUIRED_KEYS
    assert get_rules("2020").grid == "box" and get_rules("2022").grid == "resample"
    assert all(RULES[e].rank is None for e in ("2020", "2021", "2022"))
    with pytest.raises(DataError, match="unknown edition"):
        get_rules("2019")
    with pytest.raises(AttributeError):
        r25.edition = "x"  # type: ignore[misc]


@pytest.mark.parametrize("edition", ["2020", "2021", "2022", "2025", "2026"])
def test_each_edition_has_its_layouts_labels_and_names(edition: str) -> None:
    from hecktorseg.evaluation.visualize import LABEL_NAMES
    from hecktorseg.io import layout_spec

    rules, spec = get_rules(edition), layout_spec(edition)
    assert rules.labels == spec.labels  # one definition of the allowed labels: the layout record
    assert dict(rules.label_names) == {v: n for v, n in enumerate(spec.label_names) if v}
    if 2 in rules.labels:  # and one of the GTVp / GTVn names, shared by scoring and the pictures
        assert dict(rules.label_names) == LABEL_NAMES


@pytest.mark.parametrize("edition", ["2020", "2021", "2022", "2025", "2026"])
def test_every_record_matches_its_scorer_and_summary(
    edition: str, make_image: Callable[..., sitk.Image]
) -> None:
    from hecktorseg.evaluation import ScoringOptions
    from hecktorseg.evaluation.scoring import missing_score

    rules = get_rules(edition)
    gt = np.zeros((4, 8, 8), dtype=np.uint8)
    gt[1:3, 2:5, 2:5] = 1
    if 2 in rules.labels:
        gt[3, 6:8, 6:8] = 2
    image = make_image(gt)
    scored = rules.score(image, image, None, "P", ScoringOptions())
    missing = rules.score(None, image, None, "Q", ScoringOptions())
    assert scored.status == "ok" and missing.status == "missing"
    assert set(rules.metric_columns) <= set(scored.metrics) and set(rules.metric_columns) <= set(
        missing.metrics
    )
    summary = rules.summarize([scored, missing], edition)
    assert tuple(summary) == rules.summary_keys
    assert summary == summarize([scored, missing], edition)
    # one perfect case and one missing: a mean over cases gives 1/2; 2022's DSCagg 2V / (2V + V) = 2/3
    assert summary[rules.headline] == pytest.approx(2 / 3 if edition == "2022" else 0.5)
    assert missing_score("Q", edition).status == "missing"
