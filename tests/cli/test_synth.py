"""``hecktorseg synth`` on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.io import Layout, detect_layout, discover_cases


@pytest.mark.parametrize("edition", ["2020", "2021", "2022", "nnunet"])
def test_synth_writes_a_discoverable_dataset(tmp_path: Path, edition: str) -> None:
    out = tmp_path / "data"
    result = CliRunner().invoke(
        app, ["synth", str(out), "--cases", "2", "--edition", edition, "--seed", "3", "--tiny"]
    )
    assert result.exit_code == 0, result.output
    assert detect_layout(out) is Layout(edition)
    cases = discover_cases(out, require_labels=True)
    assert len(cases) == 2
    assert (cases[0].bbox is not None) == (edition in ("2020", "2021"))


def test_synth_refuses_non_empty_folder_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    runner = CliRunner()
    result = runner.invoke(app, ["synth", str(out), "--cases", "1", "--tiny"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "not empty" in lines[0] and "--force" in lines[0]
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["synth", str(out), "--cases", "1", "--tiny", "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "keep.txt").read_text() == "mine"
    assert len(discover_cases(out)) == 1


def test_synth_bad_edition_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), "--edition", "2019"])
    assert result.exit_code == 1
    assert "unknown dataset layout '2019'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_synth_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "synth.yaml"
    cfg.write_text(
        "synthetic:\n  ct_size: [40, 40, 20]\n  ct_spacing: [1.953125, 1.953125, 3.27]\n  compress: false\n"
    )
    out = tmp_path / "data"
    result = CliRunner().invoke(app, ["synth", str(out), "-n", "1", "--tiny", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    case = discover_cases(out)[0]
    assert case.ct_path.name.endswith("_ct.nii")
    import SimpleITK as sitk

    ct = sitk.ReadImage(str(case.ct_path))
    assert ct.GetSize() == (40, 40, 20)
    # a field the file sets to its default value still wins over the --tiny preset
    assert ct.GetSpacing() == pytest.approx((1.953125, 1.953125, 3.27))
    cfg.write_text("synthetic:\n  ct_sise: [40, 40, 20]\n")
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "y"), "--config", str(cfg)])
    assert result.exit_code == 1 and "ct_sise" in result.output


def test_progress_is_printed_as_lines_when_not_a_terminal(tmp_path: Path) -> None:
    """A batch job's log (stderr not a terminal) gets plain progress lines: the first and the last step."""
    result = CliRunner().invoke(app, ["synth", str(tmp_path / "d"), "--cases", "3", "--tiny"])
    assert result.exit_code == 0, result.output
    steps = [line for line in result.output.splitlines() if line.startswith("synth ") and "/3" in line]
    assert len(steps) >= 2 and steps[-1].split()[2] == "3/3", result.output
    assert int(steps[0].split()[2].split("/")[0]) < 3
