"""write_review on a hand-made cohort: values against NumPy, flags, error rows, files, no network, force."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from review_cohort import VOXEL_ML, Cohort
from scipy import ndimage

from hecktorseg.errors import DataError
from hecktorseg.review import ReviewRow, write_review


def _rows(result: Any) -> dict[str, ReviewRow]:
    return {row.patient_id: row for row in result.rows}


def test_one_row_per_case_and_stray_prediction(reviewed: tuple[Cohort, Any]) -> None:
    _, result = reviewed
    assert [r.patient_id for r in result.rows] == [f"HM-00{i}" for i in range(1, 8)] + ["XX-999"]


def test_volumes_components_and_suvmax_match_numpy(reviewed: tuple[Cohort, Any]) -> None:
    cohort, result = reviewed
    rows = _rows(result)
    for pid, mask in cohort.masks.items():
        if rows[pid].stats is None:
            continue
        stats = rows[pid].stats
        assert stats.gtvp_ml == pytest.approx((mask == 1).sum() * VOXEL_ML)
        assert stats.gtvn_ml == pytest.approx((mask == 2).sum() * VOXEL_ML)
        assert stats.gtvn_components == ndimage.label(mask == 2, structure=np.ones((3, 3, 3)))[1]
        if (mask == 1).any():  # PET and CT share the grid here: SUVmax is the PET's own maximum
            assert stats.suvmax_gtvp == pytest.approx(float(cohort.pet[pid][mask == 1].max()), rel=1e-5)
        else:
            assert math.isnan(stats.suvmax_gtvp)


def test_dice_against_the_ground_truth(reviewed: tuple[Cohort, Any]) -> None:
    cohort, result = reviewed
    pred, gt = cohort.masks["HM-001"], cohort.gt["HM-001"]
    for value, name in ((1, "GTVp"), (2, "GTVn")):
        p, g = pred == value, gt == value
        expected = 2 * (p & g).sum() / (p.sum() + g.sum())
        assert _rows(result)["HM-001"].metrics[f"dice_{name}"] == pytest.approx(expected)
    assert _rows(result)["HM-005"].metrics == {}  # no ground truth: no metric, still reviewed


def test_each_flag_where_expected(reviewed: tuple[Cohort, Any]) -> None:
    _, result = reviewed
    flags = {pid: set(row.flags) for pid, row in _rows(result).items()}
    assert flags["HM-001"] == {"models disagree"}
    assert flags["HM-002"] == {"empty"}
    assert flags["HM-005"] == {"GTVn without GTVp", "small component"}
    assert flags["HM-006"] == {"box border"}
    for pid in ("HM-003", "HM-004", "HM-007", "XX-999"):
        assert flags[pid] == {"error"}


def test_bad_inputs_are_rows_with_their_error(reviewed: tuple[Cohort, Any]) -> None:
    _, result = reviewed
    errors = result.errors
    assert set(errors) == {"HM-003", "HM-004", "HM-007", "XX-999"}
    assert "no prediction" in errors["HM-003"]
    assert "not on the CT grid" in errors["HM-004"] and "HM-004.nii.gz" in errors["HM-004"]
    assert "HM-007.nii.gz" in errors["HM-007"]
    assert "without a case" in errors["XX-999"]
    assert all("\n" not in e and "Traceback" not in e for e in errors.values())


def test_files_beside_the_page_and_nothing_from_the_network(reviewed: tuple[Cohort, Any]) -> None:
    _, result = reviewed
    out = result.index_html.parent
    cases = sorted(p.name for p in (out / "cases").iterdir())
    assert cases == [Path(r.data_file).name for r in result.rows if r.data_file is not None]
    html = result.index_html.read_text(encoding="utf-8")
    for attribute in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html):
        assert (out / attribute).is_file(), attribute  # every reference is a file beside the page
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert "http://" not in text and "https://" not in text, path
            assert not re.search(r"""(?:src|href)\s*=\s*["']//""", text), path


def test_viewer_data_is_small(reviewed: tuple[Cohort, Any]) -> None:
    _, result = reviewed
    sizes = [(result.index_html.parent / r.data_file).stat().st_size for r in result.rows if r.data_file]
    assert max(sizes) < 2_000_000


def test_existing_review_kept_without_force(cohort: Cohort, tmp_path: Path) -> None:
    box = cohort.data / "boxes.csv"
    first = write_review(cohort.pred, cohort.data, tmp_path, layout="2022", bbox_table=box)
    before = first.index_html.read_bytes()
    with pytest.raises(DataError, match="force=True"):
        write_review(cohort.pred, cohort.data, tmp_path, layout="2022", bbox_table=box)
    assert first.index_html.read_bytes() == before
    (tmp_path / "cases" / "case-0099.js").write_text("stale", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    write_review(cohort.pred, cohort.data, tmp_path, layout="2022", bbox_table=box, force=True)
    assert not (tmp_path / "cases" / "case-0099.js").exists()  # an earlier review's case file
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"  # not ours: kept


def test_scores_fill_the_metrics(cohort: Cohort, tmp_path: Path) -> None:
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "per_case.csv").write_text(
        "patient_id,status,dice_GTVp,hd95\nHM-001,ok,0.5,3.25\nHM-002,ok,0,\n", encoding="utf-8"
    )
    result = write_review(
        cohort.pred, cohort.data, tmp_path / "out", scores_dir=scores, layout="2022",
        bbox_table=cohort.data / "boxes.csv",
    )  # fmt: skip
    rows = _rows(result)
    assert rows["HM-001"].metrics == {"status": "ok", "dice_GTVp": 0.5, "hd95": 3.25}
    assert rows["HM-002"].metrics["status"] == "ok" and math.isnan(float(rows["HM-002"].metrics["hd95"]))


def test_missing_prediction_folder_is_a_one_line_error(cohort: Cohort, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="prediction folder not found"):
        write_review(tmp_path / "nope", cohort.data, tmp_path / "out")


def test_uncertainty_folder_is_where_inference_writes_it() -> None:
    from hecktorseg.inference import UNCERTAINTY_DIR
    from hecktorseg.review.review import UNCERTAINTY_SUBDIR

    assert UNCERTAINTY_SUBDIR == UNCERTAINTY_DIR
