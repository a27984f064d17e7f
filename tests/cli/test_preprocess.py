"""``hecktorseg preprocess`` through typer's CliRunner."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk
import yaml
from pre_phantoms import simple_case
from typer.testing import CliRunner

from hecktorseg.cli import app
from hecktorseg.io import write_bbox_table
from hecktorseg.preprocessing import read_manifest


def dataset(root: Path, n: int = 2) -> list[str]:
    cases = [simple_case(root, f"CHGJ{i:03d}") for i in range(1, n + 1)]
    write_bbox_table(root / "bbox.csv", {c.patient_id: c.bbox for c in cases if c.bbox is not None})
    return [c.patient_id for c in cases]


def test_cli_preprocess_flags_config_and_rerun(tmp_path: Path) -> None:
    ids = dataset(tmp_path / "raw")
    out = tmp_path / "out"
    cfg_file = tmp_path / "pre.yaml"
    cfg_file.write_text(yaml.safe_dump({"preprocess": {"spacing": [2.0, 2.0, 2.0], "ct_fill": -1000.0}}))
    runner = CliRunner()
    result = runner.invoke(
        app, ["preprocess", str(tmp_path / "raw"), str(out), "--config", str(cfg_file), "--size", "32"]
    )
    assert result.exit_code == 0, result.output
    assert "2 done" in result.output
    manifest = read_manifest(out)
    assert manifest.config.size == (32, 32, 32) and manifest.config.spacing == (2.0, 2.0, 2.0)
    assert manifest.config.ct_fill == -1000.0
    assert sorted(manifest.entries) == ids
    assert sitk.ReadImage(str(manifest.entries[ids[0]].ct_path)).GetSize() == (32, 32, 32)
    # rerun: up to date; then --force and anisotropic --size
    again = runner.invoke(
        app, ["preprocess", str(tmp_path / "raw"), str(out), "--config", str(cfg_file), "--size", "32"]
    )
    assert again.exit_code == 0 and "2 up to date" in again.output
    forced = runner.invoke(
        app,
        [
            "preprocess",
            str(tmp_path / "raw"),
            str(out),
            "--spacing",
            "2,2,3",
            "--size",
            "32,32,16",
            "--force",
        ],
    )
    assert forced.exit_code == 0, forced.output
    assert sitk.ReadImage(str(read_manifest(out).entries[ids[0]].ct_path)).GetSize() == (32, 32, 16)


def test_cli_parts_workers_and_failures(tmp_path: Path) -> None:
    ids = dataset(tmp_path / "raw", n=3)
    (tmp_path / "raw" / ids[1] / f"{ids[1]}_pt.nii.gz").write_bytes(b"not an image")
    out = tmp_path / "out"
    runner = CliRunner()
    args = ["preprocess", str(tmp_path / "raw"), str(out), "--spacing", "2", "--size", "32"]
    first = runner.invoke(app, [*args, "--num-parts", "2", "--part-id", "0", "--workers", "2"])
    assert first.exit_code == 0, first.output  # part 0 = ids[0], ids[2]
    assert sorted(read_manifest(out).entries) == [ids[0], ids[2]]
    second = runner.invoke(app, [*args, "--num-parts", "2", "--part-id", "1"])
    assert second.exit_code == 1
    assert ids[1] in second.output and "failed" in second.output and "Traceback" not in second.output
    bad = runner.invoke(app, [*args, "--part-id", "5", "--num-parts", "2"])
    assert bad.exit_code == 1 and "part_id" in bad.output


def test_cli_reports_a_patient_with_a_missing_pet_and_finishes_the_others(tmp_path: Path) -> None:
    ids = dataset(tmp_path / "raw", n=3)
    missing = tmp_path / "raw" / ids[1] / f"{ids[1]}_pt.nii.gz"
    missing.unlink()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["preprocess", str(tmp_path / "raw"), str(out), "--spacing", "2", "--size", "32"]
    )
    assert result.exit_code == 1
    assert ids[1] in result.output and "not found" in result.output and "Traceback" not in result.output
    assert sorted(read_manifest(out).entries) == [ids[0], ids[2]]


def test_cli_help_lists_the_config_fields() -> None:
    result = CliRunner().invoke(app, ["preprocess", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--spacing",
        "--size",
        "--box-source",
        "--legacy",
        "--pet-stats",
        "--workers",
        "--num-parts",
    ):
        assert flag in result.output


def test_example_config_documents_every_field() -> None:
    from hecktorseg.config import config_fields, load_yaml
    from hecktorseg.preprocessing import PreprocessConfig

    example = Path(__file__).resolve().parents[2] / "examples" / "preprocess.yaml"
    assert load_yaml(PreprocessConfig, example) == PreprocessConfig()
    data = yaml.safe_load(example.read_text())
    assert set(data) == {f.name for f in config_fields(PreprocessConfig)}
    for line in example.read_text().splitlines():
        if line and not line.startswith((" ", "#")) and ":" in line:
            assert "#" in line or line.split(":")[0] == "legacy", line  # every field carries a comment
