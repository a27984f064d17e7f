"""Box tables, path-like ids, and the scoring and drawing commands (``evaluate``, ``visualize``)."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest
from robust_helpers import N_GOOD, assert_clean_error, copy_dataset, invoke, run_cli

SMALL = ["--size", "16", "--spacing", "9"]
HEADER = "PatientID,x1,x2,y1,y2,z1,z2\n"


def _rows(raw: Path) -> list[str]:
    return (raw / "bbox.csv").read_text().splitlines()[1:]


# -- every box-table defect, through the CLI -------------------------------------------------------------
def _table(kind: str, raw: Path) -> tuple[bytes, str]:
    rows = _rows(raw)
    first = rows[0].split(",")
    body = "\n".join(rows) + "\n"
    tables = {
        "empty": ("", "empty"),
        "missing-column": ("PatientID,x1,x2,y1,y2,z1\n" + body, "lacks column"),
        "no-rows": (HEADER, "no rows"),
        "not-a-number": (HEADER + body + "CHXX099,a,1,2,3,4,5\n", "not a number"),
        "nan": (HEADER + body + "CHXX099,0,1,2,3,4,nan\n", "not finite"),
        "inf": (HEADER + body + "CHXX099,0,1,2,3,4,inf\n", "not finite"),
        "inverted": (HEADER + body + "CHXX099,5,1,2,3,4,5\n", "is not below"),
        "duplicate": (HEADER + body + rows[0] + "\n", "appears twice"),
        "empty-id": (HEADER + body + ",0,1,2,3,4,5\n", "empty patientid"),
        "short-row": (HEADER + body + "CHXX099,0,1,2\n", "expected 7 values"),
        "missing-row": (HEADER + "\n".join(rows[1:]) + "\n", f"{first[0]} has no row"),
    }
    if kind == "not-utf8":
        return HEADER.encode() + b"CH\xff\xfe001,0,1,2,3,4,5\n", "utf-8"
    text, word = tables[kind]
    return text.encode(), word


TABLE_KINDS = [
    "empty", "missing-column", "no-rows", "not-a-number", "nan", "inf", "inverted", "duplicate",
    "empty-id", "short-row", "missing-row", "not-utf8",
]  # fmt: skip


@pytest.mark.parametrize("kind", TABLE_KINDS)
@pytest.mark.parametrize("command", ["preprocess", "evaluate"])
def test_bad_box_table(command: str, kind: str, raw_dataset: Path, tmp_path: Path) -> None:
    table = tmp_path / "boxes.csv"
    data, word = _table(kind, raw_dataset)
    table.write_bytes(data)
    out = tmp_path / "out"
    args = {
        "preprocess": ["preprocess", raw_dataset, out, *SMALL, "--bbox", table],
        "evaluate": ["evaluate", raw_dataset, raw_dataset, out, "-e", "2020", "--bbox", table],
    }[command]
    code, output = invoke(args)
    line = assert_clean_error(code, output, "error:", str(table), word)
    if kind == "missing-row":
        assert "(--bbox)" in line and "--bbox-table" not in line and "bbox_table" not in line, line
    assert not out.exists() or (not any(out.rglob("*.nii.gz")) and not (out / "per_case.csv").exists())


@pytest.mark.parametrize("kind", ["folder", "fifo", "dev-zero"])
def test_box_table_that_is_not_a_file(kind: str, raw_dataset: Path, tmp_path: Path) -> None:
    """Read in a subprocess: a FIFO or /dev/zero used to block or spin."""
    table = tmp_path / "boxes.csv"
    if kind == "folder":
        table.mkdir()
    elif kind == "fifo":
        os.mkfifo(table)
    else:
        table.symlink_to("/dev/zero")
    code, output = run_cli(["preprocess", raw_dataset, tmp_path / "out", *SMALL, "--bbox", table], timeout=60)
    assert_clean_error(
        code, output, "error:", str(table), {"folder": "folder"}.get(kind, "not a regular file")
    )


# -- path-like patient ids ------------------------------------------------------------------------------
@pytest.mark.parametrize("pid", ["../escape", "/tmp/abs", "a/b", "..", "."])
def test_path_like_ids_write_nothing_outside(
    pid: str, raw_dataset: Path, small_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import attrs

    from hecktorseg.io import discover_cases
    from hecktorseg.preprocessing import preprocess_dataset

    good = discover_cases(raw_dataset)
    evil = attrs.evolve(good[0], patient_id=pid)
    work = tmp_path / "work"
    out = work / "out"
    report = preprocess_dataset([evil, *good[1:]], out, small_config)
    assert "invalid patient id" in report.failed[pid]
    assert sorted(report.done) == sorted(c.patient_id for c in good[1:])
    outside = [p for p in work.rglob("*") if out not in p.parents and p != out]
    assert not outside, outside
    assert not Path("/tmp/abs").exists()


def test_path_like_ids_in_a_box_table_are_harmless(raw_dataset: Path, tmp_path: Path) -> None:
    table = tmp_path / "boxes.csv"
    first = _rows(raw_dataset)[0].split(",")
    extra = [",".join([bad, *first[1:]]) for bad in ("../escape", "/tmp/abs-escape")]
    table.write_text(HEADER + "\n".join([*_rows(raw_dataset), *extra]) + "\n")
    work = tmp_path / "work"
    code, output = invoke(["preprocess", raw_dataset, work / "out", *SMALL, "--bbox", table])
    assert code == 0 and f"{N_GOOD} done" in output, output
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    assert not Path("/tmp/abs-escape").exists()


# -- evaluate -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def predictions(raw_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ground truth itself as predictions: every Dice is 1."""
    preds = tmp_path_factory.mktemp("robust-eval-preds")
    for label in raw_dataset.glob("*/*_ct_gtvt.nii.gz"):
        shutil.copy(label, preds / label.name.replace("_ct_gtvt", ""))
    return preds


def _per_case(out: Path) -> dict[str, dict[str, str]]:
    with (out / "per_case.csv").open() as handle:
        return {row["patient_id"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("edition", ["2020", "2021"])
def test_evaluate_box_outside_the_image(
    edition: str, raw_dataset: Path, predictions: Path, tmp_path: Path
) -> None:
    """A box entirely outside the image is an invalid case with NaN metrics and a message, not HD95 0."""
    rows = _rows(raw_dataset)
    moved = rows[0].split(",")
    moved[1:] = [str(float(v) + 5000.0) for v in moved[1:]]
    table = tmp_path / "boxes.csv"
    table.write_text(HEADER + "\n".join([",".join(moved), *rows[1:]]) + "\n")
    out = tmp_path / "eval"
    code, output = invoke(["evaluate", predictions, raw_dataset, out, "-e", edition, "--bbox", table])
    assert code == 0 and "Traceback" not in output, output
    pid = moved[0]
    assert any(pid in line and "outside the ground-truth image" in line for line in output.splitlines()), (
        output
    )
    scores = _per_case(out)
    assert scores[pid]["status"] == "invalid"
    for metric in ("dice", "hd95", "surface_dice"):
        assert scores[pid][metric] in ("", "nan", "NaN"), scores[pid]
    others = [p for p in scores if p != pid]
    assert all(scores[p]["status"] == "ok" and float(scores[p]["dice"]) == 1.0 for p in others)


def test_evaluate_needs_no_pet(raw_dataset: Path, predictions: Path, tmp_path: Path) -> None:
    raw = copy_dataset(raw_dataset, tmp_path / "raw")
    next(raw.glob("*/*_pt.nii.gz")).unlink()
    next(raw.glob("*/*_ct.nii.gz")).unlink()
    out = tmp_path / "eval"
    code, output = invoke(["evaluate", predictions, raw, out, "-e", "2020"])
    assert code == 0, output
    scores = _per_case(out)
    assert len(scores) == N_GOOD and all(
        s["status"] == "ok" and float(s["dice"]) == 1.0 for s in scores.values()
    )


def test_evaluate_prediction_on_another_grid(raw_dataset: Path, predictions: Path, tmp_path: Path) -> None:
    """A mask on another grid is resampled (nearest) and scored: a correct result, with a warning."""
    import SimpleITK as sitk

    preds = tmp_path / "preds"
    shutil.copytree(predictions, preds)
    target = sorted(preds.iterdir())[0]
    image = sitk.ReadImage(str(target))
    finer = [s / 2 for s in image.GetSpacing()]
    size = [n * 2 for n in image.GetSize()]
    origin = image.TransformContinuousIndexToPhysicalPoint([-0.25, -0.25, -0.25])
    resampled = sitk.Resample(
        image, size, sitk.Transform(), sitk.sitkNearestNeighbor, origin, finer, image.GetDirection()
    )
    sitk.WriteImage(resampled, str(target))
    code, output = invoke(["evaluate", preds, raw_dataset, tmp_path / "eval", "-e", "2020"])
    assert code == 0, output
    row = _per_case(tmp_path / "eval")[target.name.split(".")[0]]
    assert row["status"] == "ok" and float(row["dice"]) > 0.95


# -- visualize ------------------------------------------------------------------------------------------
def test_visualize_reports_a_bad_case_and_draws_the_others(raw_dataset: Path, tmp_path: Path) -> None:
    raw = copy_dataset(raw_dataset, tmp_path / "raw")
    bad = sorted(raw.glob("*/*_ct.nii.gz"))[1]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    out = tmp_path / "png"
    code, output = invoke(["visualize", raw, out])
    pid = bad.name.split("_ct")[0]
    line = assert_clean_error(code, output, pid, bad.name)
    assert "ends early" in line or "truncated" in line, line
    drawn = sorted(p.stem for p in out.glob("*.png"))
    assert len(drawn) == N_GOOD - 1 and pid not in drawn
