"""``hecktorseg review`` on the command line: the page, the failed cases, exit codes, --force."""

from __future__ import annotations

from pathlib import Path

from review_cohort import build_cohort
from typer.testing import CliRunner

from hecktorseg.cli import app


def test_review_writes_the_page_and_reports_failed_cases(tmp_path: Path) -> None:
    cohort = build_cohort(tmp_path / "c")
    out = tmp_path / "review"
    args = ["review", str(cohort.pred), str(cohort.data), str(out), "--layout", "2022"]
    args += ["--bbox-table", str(cohort.data / "boxes.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # four cases could not be reviewed
    assert "8 case(s)" in result.output and "4 failed" in result.output
    assert out.joinpath("index.html").resolve().as_uri() in result.output.replace("\n", "")
    for pid in ("HM-003", "HM-004", "HM-007", "XX-999"):
        assert f"failed {pid}" in result.output
    assert "Traceback" not in result.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "--force" in again.output and "already exists" in again.output
    assert CliRunner().invoke(app, [*args, "--force"]).exit_code == 1  # rewritten; the same four fail


def test_review_of_a_clean_cohort_exits_0(tmp_path: Path) -> None:
    cohort = build_cohort(tmp_path / "c")
    for bad in ("HM-004", "HM-007", "XX-999"):
        (cohort.pred / f"{bad}.nii.gz").unlink()
    for pid in ("HM-003", "HM-004", "HM-007"):
        for path in cohort.data.rglob(f"{pid}*"):
            path.unlink()
    result = CliRunner().invoke(
        app,
        ["review", str(cohort.pred), str(cohort.data), str(tmp_path / "r"), "--layout", "2022"],
    )
    assert result.exit_code == 0, result.output
    assert "4 case(s)" in result.output and "0 failed" in result.output
