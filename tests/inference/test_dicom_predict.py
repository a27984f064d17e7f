"""``predict_dicom``: a DICOM folder in, NIfTI masks and RTSTRUCT / DICOM-SEG files out that read back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

import highdicom as hd
import pydicom
from dicom_helpers import dciodvfy_errors, dice

from hecktorseg.data import SyntheticConfig, write_synthetic_dicom
from hecktorseg.dicom import index_dicom, load_series, rtstruct_to_labels, select_series
from hecktorseg.errors import ConfigError
from hecktorseg.inference import Predictor, looks_like_dicom, predict_dicom
from hecktorseg.io import Geometry, image_to_array, read_image


@pytest.fixture
def predictor(toys: SimpleNamespace) -> Predictor:
    # toy segmenter: foreground where the CT is above 0 HU (the phantom's bone and tumour)
    return Predictor(
        [toys.CTThreshold(n_classes=3)],
        preprocess=toys.SMALL_CONFIG,
        device="cpu",
        backend="torch",
        precision="fp32",
    )


def test_predict_dicom_writes_rtstruct_and_seg_that_read_back(tmp_path: Path, predictor: Predictor) -> None:
    src = tmp_path / "src"
    write_synthetic_dicom(src, n_cases=1, config=SyntheticConfig.tiny())
    assert looks_like_dicom(src) and not looks_like_dicom(tmp_path / "nothing")
    out = tmp_path / "out"
    report = predict_dicom(src, out, predictor, output_format="rtstruct")
    assert report.ok and len(report.done) == 1, report.failed
    (pid,) = report.done
    mask = np.asarray(image_to_array(read_image(out / f"{pid}.nii.gz")))
    assert np.any(mask == 1)
    index = index_dicom(src)
    ct = load_series(select_series(pid, index.series[pid]).ct)
    rt = out / f"{pid}_RTSTRUCT.dcm"
    back, _ = rtstruct_to_labels(pydicom.dcmread(rt), Geometry.from_image(ct.image))
    assert dice(mask == 1, back == 1) >= 0.97
    assert dciodvfy_errors(rt) == []
    seg_report = predict_dicom(src, out, predictor, output_format="seg")
    assert seg_report.ok
    seg = hd.seg.segread(out / f"{pid}_SEG.dcm")
    uids = [str(d.SOPInstanceUID) for d in ct.datasets]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(pixels, mask)


def test_unknown_output_format(tmp_path: Path, predictor: Predictor) -> None:
    with pytest.raises(ConfigError, match="output_format"):
        predict_dicom(tmp_path, tmp_path / "o", predictor, output_format="png")


def test_cli_predict_output_format(tmp_path: Path, toys: SimpleNamespace) -> None:
    import torch
    from typer.testing import CliRunner

    from hecktorseg.cli import app
    from hecktorseg.config import to_dict
    from hecktorseg.models import build_model, save_checkpoint

    src = tmp_path / "src"
    write_synthetic_dicom(src, n_cases=1, config=SyntheticConfig.tiny())
    torch.manual_seed(0)
    ckpt = tmp_path / "model.pt"
    save_checkpoint(
        ckpt,
        build_model("senorm_unet", n_filters=4, n_classes=3),
        metadata={"preprocess": to_dict(toys.SMALL_CONFIG)},
    )
    common = ["--model", str(ckpt), "--precision", "fp32", "--backend", "torch", "--device", "cpu"]
    runner = CliRunner()
    result = runner.invoke(
        app, ["predict", str(src), str(tmp_path / "out"), *common, "--output-format", "seg"]
    )
    assert result.exit_code == 0, result.output
    (seg,) = sorted((tmp_path / "out").glob("*_SEG.dcm"))
    assert dciodvfy_errors(seg) == []
    nifti = tmp_path / "out" / "dicom_import"
    result = runner.invoke(
        app, ["predict", str(nifti), str(tmp_path / "o2"), *common, "--output-format", "rtstruct"]
    )
    assert result.exit_code == 1 and "needs a folder of DICOM files" in result.output
