"""``hecktorseg dicom import|export`` and ``synth --format dicom`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

from dicom_helpers import dciodvfy_errors, dice

from hecktorseg.cli import app
from hecktorseg.dicom import index_dicom, load_series, rtstruct_to_labels, select_series
from hecktorseg.io import Geometry, image_to_array, read_image


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synth --format dicom (3 tiny patients) → dicom import."""
    root = tmp_path_factory.mktemp("cli_dicom")
    runner = CliRunner()
    result = runner.invoke(app, ["synth", str(root / "src"), "--tiny", "-n", "3", "--format", "dicom"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["dicom", "import", str(root / "src"), str(root / "dst")])
    assert result.exit_code == 0, result.output
    assert "3 imported" in result.output
    return root


def test_import_maps_every_clinic_spelling(chain: Path) -> None:
    rois = {}
    for path in sorted((chain / "dst" / "dicom_records").glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        rois.update(record["rtstruct"]["roi_labels"])
    assert rois == {"GTVp": 1, "GTVn": 2, "GTV-P": 1, "GTV_N1": 2, "GTV_primary": 1, "GTVn_L2": 2}


def test_import_again_is_up_to_date(chain: Path) -> None:
    result = CliRunner().invoke(app, ["dicom", "import", str(chain / "src"), str(chain / "dst")])
    assert result.exit_code == 0 and "3 up to date" in result.output


@pytest.mark.parametrize("fmt", ["rtstruct", "seg"])
def test_export_reads_back_and_validates(chain: Path, fmt: str) -> None:
    out = chain / f"out_{fmt}"
    result = CliRunner().invoke(
        app, ["dicom", "export", str(chain / "dst"), str(chain / "src"), str(out), "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 3
    index = index_dicom(chain / "src")
    for path in files:
        assert dciodvfy_errors(path) == []
        pid = path.name.split("_")[0]
        truth = np.asarray(image_to_array(read_image(chain / "dst" / pid / f"{pid}.nii.gz")))
        ct = load_series(select_series(pid, index.series[pid]).ct)
        if fmt == "rtstruct":
            back, _ = rtstruct_to_labels(pydicom.dcmread(path), Geometry.from_image(ct.image))
            for value in (1, 2):
                assert dice(truth == value, back == value) >= 0.97
        else:
            import highdicom as hd

            seg = hd.seg.segread(path)
            uids = [str(d.SOPInstanceUID) for d in ct.datasets]
            back = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
            np.testing.assert_array_equal(back, truth)


def test_bad_patient_is_one_line_and_exit_1(chain: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["dicom", "import", str(chain / "src"), str(tmp_path / "dst"), "--gtvp-roi", "("]
    )
    assert result.exit_code == 1 and "invalid ROI name pattern" in result.output
    assert "--gtvp-roi" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["dicom", "export", str(tmp_path), str(chain / "src"), str(tmp_path / "o")])
    assert result.exit_code == 1 and "no <PID>.nii.gz label map" in result.output


def test_missing_extra_gives_the_install_command() -> None:
    from hecktorseg.dicom._deps import require
    from hecktorseg.errors import ConfigError

    with pytest.raises(ConfigError, match=r'pip install "hecktorseg\[dicom\]"'):
        require("hecktorseg_no_such_module")


def test_without_the_extra_the_command_says_how_to_install(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys; sys.modules['pydicom'] = None\n"
        "from typer.testing import CliRunner\n"
        "from hecktorseg.cli import app\n"
        f"r = CliRunner().invoke(app, ['dicom', 'import', {str(tmp_path)!r}, {str(tmp_path / 'o')!r}])\n"
        "print(r.exit_code); print(r.output)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    code, _, output = result.stdout.partition("\n")
    assert code == "1", result.stdout + result.stderr
    assert 'pip install "hecktorseg[dicom]"' in output and "Traceback" not in output
    assert len([line for line in output.splitlines() if line.strip()]) <= 2  # one error line (maybe wrapped)
